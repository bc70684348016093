package segment

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"sync"

	"github.com/klauspost/compress/zstd"
	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/encoding/bytestreamsplit"
	"github.com/parquet-go/parquet-go/encoding/delta"
	"github.com/parquet-go/parquet-go/encoding/plain"
	"github.com/parquet-go/parquet-go/encoding/rle"
	"github.com/parquet-go/parquet-go/encoding/thrift"
	"github.com/parquet-go/parquet-go/format"

	"github.com/hourglass-io/hourglass/tsstore"
)

// The segment writer writes the Parquet file of a batch directly from its
// columns with parquet-go's building blocks (the thrift structures of the
// format, its level, dictionary-index, delta and byte-stream-split
// encodings) rather than value by value through parquet.Writer: the
// dictionaries of the metric and label columns are the batch's series
// table, and a point's label entries and levels are its series', copied,
// never hashed. Pages are written as they are made: an encoding holds one
// page and the file's metadata.

// defaultPageRows is the number of rows of a data page (the last of a row
// group may have fewer).
const defaultPageRows = 1 << 16

// zstdLevel is the compression level of the pages. SpeedFastest: on a
// segment of the flush benchmark's workload (BenchmarkEncode), when values
// were plain, it made the file 6% larger than SpeedDefault (5.59 against
// 5.27 bytes per point; parquet.Writer made 5.42) for 15 to 30 ns less CPU
// per point, a quarter to a third of the encoding's then: the other
// columns are dictionary indexes and deltas, which the fastest level packs
// well.
//
// Values are byte-stream-split: the k-th bytes of all values of a page in
// a stream of their own, so that the exponent's bytes follow each other,
// and the mantissa's low bytes (zero in counts and small integers) too.
// Plain doubles cost the fastest level some 65 ns a point (a short match
// and a literal every 8 bytes), half of the encoding's CPU; split, 13 ns,
// at 2.0 instead of 1.2 bytes a point on that workload (the file 6.4
// instead of 5.6). SpeedDefault would pack the split values into 1.16
// bytes, for as much CPU as plain ones at SpeedFastest: the flush's CPU,
// which competes with ingest, is worth more than 0.8 bytes a point of
// archive.
const zstdLevel = zstd.SpeedFastest

// createdBy is the file's created_by, as parquet.CreatedBy("hourglass",
// "", "") writes it.
const createdBy = "hourglass version (build )"

// encoderPool holds encoders (their page buffers and compressor) for the
// next Encode: a flush encodes segment after segment.
var encoderPool = sync.Pool{New: func() any { return &encoder{f: fileWriter{zstd: newZstd(zstdLevel)}} }}

func newZstd(level zstd.EncoderLevel) *zstd.Encoder {
	e, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(level), zstd.WithEncoderConcurrency(1),
		zstd.WithZeroFrames(true), zstd.WithEncoderCRC(false))
	if err != nil {
		panic("segment: zstd encoder: " + err.Error())
	}
	return e
}

// schemaElements are the Schema's elements in the file metadata, made as
// parquet.Writer makes them: the nodes depth first, the root without a
// repetition type.
var schemaElements, columnOrders = func() ([]format.SchemaElement, []format.ColumnOrder) {
	var elems []format.SchemaElement
	var orders []format.ColumnOrder
	var walk func(name string, n parquet.Node, root bool)
	walk = func(name string, n parquet.Node, root bool) {
		t := n.Type()
		e := format.SchemaElement{Name: name, FieldID: int32(n.ID())}
		if !root {
			switch {
			case n.Required():
				e.RepetitionType = thrift.New(format.Required)
			case n.Optional():
				e.RepetitionType = thrift.New(format.Optional)
			case n.Repeated():
				e.RepetitionType = thrift.New(format.Repeated)
			}
		}
		if lt := t.LogicalType(); lt != nil {
			e.LogicalType = *lt
		}
		if l := int32(t.Length()); l > 0 {
			e.TypeLength = thrift.New(l)
		}
		if !n.Leaf() {
			e.NumChildren = thrift.New(int32(len(n.Fields())))
		}
		if pt := t.PhysicalType(); pt != nil {
			e.Type = thrift.New(*pt)
		}
		if ct := t.ConvertedType(); ct != nil {
			e.ConvertedType = thrift.New(*ct)
		}
		elems = append(elems, e)
		if n.Leaf() {
			orders = append(orders, *t.ColumnOrder())
		}
		for _, f := range n.Fields() {
			walk(f.Name(), f, false)
		}
	}
	walk(Schema.Name(), Schema, true)
	return elems, orders
}()

// dictionaries are the batch's series table as the dictionaries of the
// metric and label columns, and each series' entries in them.
type dictionaries struct {
	metrics  []string // distinct, sorted (the table is)
	metricOf []int32  // the metric of each series

	names, values []string // distinct label names and values
	// The labels of series i are entries [at[i], at[i+1]) of nameOf and
	// valueOf; their repetition and definition levels are entries
	// [levelAt[i], levelAt[i+1]) of rep and def: one entry per label, or
	// one null entry (rep 0, def 0) for no labels.
	at, levelAt      []int32
	nameOf, valueOf  []int32
	rep, def         []uint8
	noLabels         []bool
	sameLevelPattern bool // every series has the levels 0,1,1...,(n) with the same n > 0
	sameNames        bool // and the same label names

	// Memory kept for the next batch.
	nameIndex, valueIndex map[string]int32
	last                  []lastLabel
}

// lastLabel is a label of the previous series and its entries.
type lastLabel struct {
	label       tsstore.Label
	name, value int32
}

// dictionaries makes d the dictionaries of b, in d's memory.
func (b *Batch) dictionaries(d *dictionaries) {
	n := len(b.tab)
	d.metrics = d.metrics[:0]
	d.metricOf = resize(d.metricOf, n)
	d.at, d.levelAt = append(d.at[:0], 0), append(d.levelAt[:0], 0)
	d.noLabels = resize(d.noLabels, n)
	clear(d.noLabels)
	labels, levels, most := 0, 0, 0
	for i := range b.tab {
		labels += len(b.tab[i].Labels)
		levels += max(len(b.tab[i].Labels), 1)
		most = max(most, len(b.tab[i].Labels))
	}
	d.nameOf, d.valueOf = slices.Grow(d.nameOf[:0], labels), slices.Grow(d.valueOf[:0], labels)
	d.rep, d.def = slices.Grow(d.rep[:0], levels), slices.Grow(d.def[:0], levels)
	d.names, d.values = d.names[:0], d.values[:0]
	if d.nameIndex == nil {
		d.nameIndex, d.valueIndex = make(map[string]int32), make(map[string]int32)
	}
	intern := func(m map[string]int32, list *[]string, s string) int32 {
		i, ok := m[s]
		if !ok {
			i = int32(len(*list))
			m[s] = i
			*list = append(*list, s)
		}
		return i
	}
	// The table is sorted: a series often has the label of the one before
	// at the same place (the first label of series of one metric
	// especially), which then needs no lookup.
	d.last = resize(d.last, most)
	for j := range d.last {
		d.last[j] = lastLabel{name: -1}
	}
	d.sameLevelPattern = n > 0
	for i := range b.tab {
		s := &b.tab[i]
		if len(d.metrics) == 0 || d.metrics[len(d.metrics)-1] != s.Metric {
			d.metrics = append(d.metrics, s.Metric)
		}
		d.metricOf[i] = int32(len(d.metrics) - 1)
		for j, l := range s.Labels {
			last := &d.last[j]
			if last.name < 0 || last.label.Name != l.Name {
				last.label.Name, last.name = l.Name, intern(d.nameIndex, &d.names, l.Name)
				last.label.Value, last.value = l.Value, intern(d.valueIndex, &d.values, l.Value)
			} else if last.label.Value != l.Value {
				last.label.Value, last.value = l.Value, intern(d.valueIndex, &d.values, l.Value)
			}
			d.nameOf = append(d.nameOf, last.name)
			d.valueOf = append(d.valueOf, last.value)
			d.rep = append(d.rep, uint8(min(j, 1)))
			d.def = append(d.def, 1)
		}
		if len(s.Labels) == 0 {
			d.rep = append(d.rep, 0)
			d.def = append(d.def, 0)
			d.noLabels[i] = true
		}
		d.at = append(d.at, int32(len(d.nameOf)))
		d.levelAt = append(d.levelAt, int32(len(d.rep)))
		if len(s.Labels) == 0 || len(s.Labels) != len(b.tab[0].Labels) {
			d.sameLevelPattern = false
		}
	}
	d.sameNames = d.sameLevelPattern
	if d.sameNames {
		n := len(b.tab[0].Labels)
		for i := n; i < len(d.nameOf) && d.sameNames; i += n {
			d.sameNames = slices.Equal(d.nameOf[i:i+n], d.nameOf[:n])
		}
	}
}

// release drops d's references to a batch's strings, keeping its memory.
func (d *dictionaries) release() {
	clear(d.metrics[:cap(d.metrics)])
	clear(d.names[:cap(d.names)])
	clear(d.values[:cap(d.values)])
	clear(d.last)
	clear(d.nameIndex)
	clear(d.valueIndex)
}

// fileWriter writes a file and counts its bytes. Its first error sticks.
type fileWriter struct {
	w     io.Writer
	off   int64
	err   error
	zstd  *zstd.Encoder
	proto thrift.CompactProtocol
	z     []byte // a compressed page
}

func (f *fileWriter) write(bs ...[]byte) {
	for _, b := range bs {
		if f.err != nil {
			return
		}
		var n int
		n, f.err = f.w.Write(b)
		f.off += int64(n)
	}
}

// chunkWriter writes the pages of a column chunk and makes its metadata.
type chunkWriter struct {
	f     *fileWriter
	cc    format.ColumnChunk
	pages int32
	enc   format.Encoding // of the data pages
}

func (f *fileWriter) chunk(typ format.Type, enc format.Encoding, encodings []format.Encoding, path ...string) *chunkWriter {
	return &chunkWriter{f: f, enc: enc, cc: format.ColumnChunk{FileOffset: f.off, MetaData: format.ColumnMetaData{
		Type: typ, Encoding: encodings, PathInSchema: path, Codec: format.Zstd,
	}}}
}

// page writes a page of header h whose body is levels (uncompressed) then
// data (compressed).
func (c *chunkWriter) page(h *format.PageHeader, data []byte, levels ...[]byte) {
	f := c.f
	f.z = f.zstd.EncodeAll(data, f.z[:0])
	lv := 0
	for _, l := range levels {
		lv += len(l)
	}
	h.UncompressedPageSize = int32(lv + len(data))
	h.CompressedPageSize = int32(lv + len(f.z))
	hdr, err := thrift.Marshal(&f.proto, h)
	if err != nil && f.err == nil {
		f.err = err
	}
	f.write(hdr)
	f.write(levels...)
	f.write(f.z)
	m := &c.cc.MetaData
	m.TotalUncompressedSize += int64(len(hdr)) + int64(h.UncompressedPageSize)
	m.TotalCompressedSize += int64(len(hdr)) + int64(h.CompressedPageSize)
}

// dictionary writes the dictionary page of the strings dict.
func (c *chunkWriter) dictionary(dict []string, buf []byte) []byte {
	buf = buf[:0]
	for _, s := range dict {
		buf = plain.AppendByteArrayString(buf, s)
	}
	c.cc.MetaData.DictionaryPageOffset = c.f.off
	c.page(&format.PageHeader{Type: format.DictionaryPage, DictionaryPageHeader: thrift.New(format.DictionaryPageHeader{
		NumValues: int32(len(dict)), Encoding: format.Plain,
	})}, buf)
	return buf
}

// dataPage writes a data page (v2) of rows rows and values values (nulls
// of which are null).
func (c *chunkWriter) dataPage(rows, values, nulls int, data, rep, def []byte) {
	m := &c.cc.MetaData
	if c.pages == 0 {
		m.DataPageOffset = c.f.off
	}
	c.pages++
	m.NumValues += int64(values)
	c.page(&format.PageHeader{Type: format.DataPageV2, DataPageHeaderV2: thrift.New(format.DataPageHeaderV2{
		NumValues: int32(values), NumNulls: int32(nulls), NumRows: int32(rows), Encoding: c.enc,
		DefinitionLevelsByteLength: int32(len(def)), RepetitionLevelsByteLength: int32(len(rep)),
		IsCompressed: thrift.New(true),
	})}, data, rep, def)
}

func (c *chunkWriter) done() format.ColumnChunk {
	m := &c.cc.MetaData
	if m.DictionaryPageOffset != 0 {
		m.EncodingStats = append(m.EncodingStats, format.PageEncodingStats{PageType: format.DictionaryPage, Encoding: format.Plain, Count: 1})
	}
	m.EncodingStats = append(m.EncodingStats, format.PageEncodingStats{PageType: format.DataPageV2, Encoding: c.enc, Count: c.pages})
	return c.cc
}

// encoder holds the buffers of one page of each kind.
type encoder struct {
	f        fileWriter
	dict     dictionaries
	pageRows int
	data     []byte
	idx      []int32
	rep, def []uint8
	repEnc   [][]byte // the encoded levels of the pages of the row group's label columns
	defEnc   [][]byte
	nulls    []int
	// The rows of the last page whose levels (levelRows) or names
	// (namesRows, encoded in namesData) were made, or -1: a page of as
	// many rows has the same (see dictionaries.sameLevelPattern and
	// sameNames).
	levelRows, namesRows int
	namesData            []byte
}

// Encode writes the batch as a segment file named name with content
// digest content (see Digest): its rows in the order of the batch, in row
// groups of o.RowGroupRows. Pages are written to w as they are made; w
// gets many small writes (buffer it).
func (b *Batch) Encode(w io.Writer, name, content string, o EncodeOptions) error {
	rg := o.RowGroupRows
	if rg <= 0 {
		rg = DefaultRowGroupRows
	}
	e := encoderPool.Get().(*encoder)
	defer func() {
		e.f.w = nil // no reference to the caller's data kept
		e.dict.release()
		encoderPool.Put(e)
	}()
	e.f = fileWriter{w: w, zstd: e.f.zstd, z: e.f.z}
	b.dictionaries(&e.dict)
	e.pageRows = o.pageRows
	if e.pageRows <= 0 {
		e.pageRows = defaultPageRows
	}
	if o.zstdLevel != 0 {
		pooled := e.f.zstd
		defer func() { e.f.zstd = pooled }()
		e.f.zstd = newZstd(o.zstdLevel)
	}
	e.f.write([]byte("PAR1"))
	var groups []format.RowGroup
	for lo := 0; lo < b.Len(); lo += rg {
		hi := min(lo+rg, b.Len())
		start := e.f.off
		cols := []format.ColumnChunk{e.time(b, lo, hi), e.metric(b, lo, hi), e.labels(b, lo, hi, true), e.labels(b, lo, hi, false), e.value(b, lo, hi)}
		g := format.RowGroup{Columns: cols, NumRows: int64(hi - lo), FileOffset: start, Ordinal: int16(len(groups))}
		for _, c := range cols {
			g.TotalByteSize += c.MetaData.TotalUncompressedSize
			g.TotalCompressedSize += c.MetaData.TotalCompressedSize
		}
		groups = append(groups, g)
	}
	kv := []format.KeyValue{{Key: KeyName, Value: name}, {Key: KeyContent, Value: content}, {Key: KeyFormat, Value: Format}}
	slices.SortFunc(kv, func(a, b format.KeyValue) int { return strings.Compare(a.Key, b.Key) })
	footer, err := thrift.Marshal(&e.f.proto, &format.FileMetaData{
		Version: 2, Schema: schemaElements, NumRows: int64(b.Len()), RowGroups: groups,
		KeyValueMetadata: kv, CreatedBy: createdBy, ColumnOrders: columnOrders,
	})
	if err != nil {
		return fmt.Errorf("encode segment %s: footer: %w", name, err)
	}
	e.f.write(footer, binaryLength(len(footer)), []byte("PAR1"))
	if e.f.err != nil {
		return fmt.Errorf("encode segment %s: %w", name, e.f.err)
	}
	return nil
}

func binaryLength(n int) []byte {
	return []byte{byte(n), byte(n >> 8), byte(n >> 16), byte(n >> 24)}
}

// EncodeBytes is Encode into memory.
func (b *Batch) EncodeBytes(name, content string, o EncodeOptions) ([]byte, error) {
	var buf bytes.Buffer
	if err := b.Encode(&buf, name, content, o); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func (e *encoder) time(b *Batch, lo, hi int) format.ColumnChunk {
	c := e.f.chunk(format.Int64, format.DeltaBinaryPacked, []format.Encoding{format.DeltaBinaryPacked}, "time")
	for p := lo; p < hi; p += e.pageRows {
		q := min(p+e.pageRows, hi)
		e.data, _ = (&delta.BinaryPackedEncoding{}).EncodeInt64(e.data, b.times[p:q])
		c.dataPage(q-p, q-p, 0, e.data, nil, nil)
	}
	// Sorted by time: the bounds are the ends.
	c.cc.MetaData.Statistics = format.Statistics{MinValue: plain.Int64(b.times[lo]), MaxValue: plain.Int64(b.times[hi-1])}
	return c.done()
}

func (e *encoder) metric(b *Batch, lo, hi int) format.ColumnChunk {
	c := e.f.chunk(format.ByteArray, format.RLEDictionary, []format.Encoding{format.Plain, format.RLEDictionary}, "metric")
	e.data = c.dictionary(e.dict.metrics, e.data)
	lowest, highest := int32(math.MaxInt32), int32(-1)
	for p := lo; p < hi; p += e.pageRows {
		q := min(p+e.pageRows, hi)
		e.idx = e.idx[:0]
		for _, id := range b.ids[p:q] {
			m := e.dict.metricOf[id]
			e.idx = append(e.idx, m)
			lowest, highest = min(lowest, m), max(highest, m)
		}
		e.data, _ = (&rle.DictionaryEncoding{}).EncodeInt32(e.data, e.idx)
		c.dataPage(q-p, q-p, 0, e.data, nil, nil)
	}
	c.cc.MetaData.Statistics = format.Statistics{MinValue: []byte(e.dict.metrics[lowest]), MaxValue: []byte(e.dict.metrics[highest])}
	return c.done()
}

// labels writes the chunk of the label names (keys) or values. The levels
// of the pages, the same in both, are made for the names and kept for the
// values.
func (e *encoder) labels(b *Batch, lo, hi int, keys bool) format.ColumnChunk {
	d := &e.dict
	path, dict, of := "value", d.values, d.valueOf
	if keys {
		path, dict, of = "key", d.names, d.nameOf
		e.repEnc, e.defEnc, e.nulls = e.repEnc[:0], e.defEnc[:0], e.nulls[:0]
		e.levelRows, e.namesRows = -1, -1
	}
	c := e.f.chunk(format.ByteArray, format.RLEDictionary, []format.Encoding{format.Plain, format.RLE, format.RLEDictionary}, "labels", "key_value", path)
	e.data = c.dictionary(dict, e.data)
	nulls := 0
	for page, p := 0, lo; p < hi; page, p = page+1, p+e.pageRows {
		q := min(p+e.pageRows, hi)
		if keys {
			e.levels(b, p, q, page)
		}
		var data []byte
		var entries int
		if keys && d.sameNames && q-p == e.namesRows {
			// The names of every row are the same: so is a page of as
			// many rows as the one before.
			data, entries = e.namesData, int(d.at[1])*(q-p)
		} else {
			e.entries(b, p, q, of)
			e.data, _ = (&rle.DictionaryEncoding{}).EncodeInt32(e.data, e.idx)
			data, entries = e.data, len(e.idx)
			if keys && d.sameNames {
				e.namesData, e.namesRows = append(e.namesData[:0], e.data...), q-p
			}
		}
		pageNulls := e.nulls[page]
		c.dataPage(q-p, entries+pageNulls, pageNulls, data, e.repEnc[page], e.defEnc[page])
	}
	for _, n := range e.nulls {
		nulls += n
	}
	c.cc.MetaData.Statistics = format.Statistics{NullCount: int64(nulls)}
	return c.done()
}

// levels encodes the repetition and definition levels of the label
// entries of rows p to q, the page-th page, into e.repEnc[page] and
// e.defEnc[page], and counts its nulls into e.nulls.
func (e *encoder) levels(b *Batch, p, q, page int) {
	d := &e.dict
	if page == len(e.repEnc) {
		e.repEnc, e.defEnc = append(e.repEnc, nil), append(e.defEnc, nil)
	}
	if d.sameLevelPattern && q-p == e.levelRows {
		// The levels of a page of as many rows as the one before.
		e.repEnc[page] = append(e.repEnc[page][:0], e.repEnc[page-1]...)
		e.defEnc[page] = append(e.defEnc[page][:0], e.defEnc[page-1]...)
		e.nulls = append(e.nulls, 0)
		return
	}
	e.rep, e.def = e.rep[:0], e.def[:0]
	pageNulls := 0
	if d.sameLevelPattern {
		// Every series has n labels: a row's levels are 0, 1, ... 1, all
		// defined.
		n := int(d.at[1])
		entries := n * (q - p)
		e.rep = slices.Grow(e.rep, entries)[:entries]
		e.def = slices.Grow(e.def, entries)[:entries]
		for i := range e.rep {
			e.rep[i], e.def[i] = 1, 1
		}
		for i := 0; i < entries; i += n {
			e.rep[i] = 0
		}
		e.levelRows = q - p
	} else {
		for _, id := range b.ids[p:q] {
			e.rep = append(e.rep, d.rep[d.levelAt[id]:d.levelAt[id+1]]...)
			e.def = append(e.def, d.def[d.levelAt[id]:d.levelAt[id+1]]...)
			if d.noLabels[id] {
				pageNulls++
			}
		}
	}
	e.repEnc[page], _ = (&rle.Encoding{BitWidth: 1}).EncodeLevels(e.repEnc[page], e.rep)
	e.defEnc[page], _ = (&rle.Encoding{BitWidth: 1}).EncodeLevels(e.defEnc[page], e.def)
	e.nulls = append(e.nulls, pageNulls)
}

// entries sets e.idx to the dictionary entries of the label names or
// values (of) of rows p to q.
func (e *encoder) entries(b *Batch, p, q int, of []int32) {
	d := &e.dict
	e.idx = e.idx[:0]
	if !d.sameLevelPattern {
		for _, id := range b.ids[p:q] {
			e.idx = append(e.idx, of[d.at[id]:d.at[id+1]]...)
		}
		return
	}
	// Every series has n labels: its entries are n*id to n*id+n.
	n := int(d.at[1])
	entries := n * (q - p)
	e.idx = slices.Grow(e.idx, entries)[:entries]
	if n == 2 {
		for i, id := range b.ids[p:q] {
			e.idx[2*i], e.idx[2*i+1] = of[2*id], of[2*id+1]
		}
		return
	}
	for i, id := range b.ids[p:q] {
		copy(e.idx[n*i:n*i+n], of[n*int(id):])
	}
}

func (e *encoder) value(b *Batch, lo, hi int) format.ColumnChunk {
	c := e.f.chunk(format.Double, format.ByteStreamSplit, []format.Encoding{format.ByteStreamSplit}, "value")
	lowest, highest := bounds(b.values[lo:hi])
	// Zero bounds are signed so that a reader comparing -0 and +0 either
	// way keeps the page (as the Parquet spec asks).
	if lowest == 0 {
		lowest = math.Copysign(0, -1)
	}
	if highest == 0 {
		highest = 0
	}
	for p := lo; p < hi; p += e.pageRows {
		q := min(p+e.pageRows, hi)
		e.data, _ = (&bytestreamsplit.Encoding{}).EncodeDouble(e.data, b.values[p:q])
		c.dataPage(q-p, q-p, 0, e.data, nil, nil)
	}
	c.cc.MetaData.Statistics = format.Statistics{MinValue: plain.Double(lowest), MaxValue: plain.Double(highest)}
	return c.done()
}

// bounds returns the least and the greatest of the values vs (not empty)
// as the builtins min and max do, but for the sign of a zero bound (either
// zero's: the caller signs them): NaN when one is NaN. Plain comparisons
// cost a fraction of the builtins' NaN-aware selections; a NaN, which they
// pass over, sends it back to the builtins.
func bounds(vs []float64) (lowest, highest float64) {
	lowest, highest = vs[0], vs[0]
	nan := false
	for _, v := range vs {
		if v < lowest {
			lowest = v
		}
		if v > highest {
			highest = v
		}
		nan = nan || v != v
	}
	if nan {
		// The NaN the builtins return.
		lowest, highest = vs[0], vs[0]
		for _, v := range vs {
			lowest, highest = min(lowest, v), max(highest, v)
		}
	}
	return lowest, highest
}
