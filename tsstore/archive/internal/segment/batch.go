package segment

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"unsafe"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress/zstd"

	"github.com/hourglass-io/hourglass/tsstore"
)

// Batch is the points of one segment prepared once for Digest and Encode:
// sorted by Compare, each with the index of its series (metric and labels)
// in a table of the distinct series, so that the sort, the digest and the
// Parquet columns handle a series' strings once rather than once per
// point. Points that share a labels slice (as points decoded from a log or
// parsed from one request do) are grouped without looking at the labels.
// Not safe for concurrent use.
type Batch struct {
	// Points are the points sorted by Compare. Their labels are shared
	// with the points given to Prepare.
	Points []tsstore.Point
	ids    []int32  // the series of each point: an index into tab
	tab    []series // the distinct series, in (metric, labels) order
}

type series struct {
	metric string
	labels tsstore.Labels
}

func compareSeries(a, b *series) int {
	if c := strings.Compare(a.metric, b.metric); c != 0 {
		return c
	}
	return a.labels.Compare(b.labels)
}

// identity groups points by their metric and labels slice (not content).
type identity struct {
	metric string
	first  *tsstore.Label
	n      int
}

// Prepare returns the batch of ps (in any order), which it does not modify.
func Prepare(ps []tsstore.Point) *Batch {
	ids, tab := index(ps)
	type key struct {
		ts     int64
		series int32
		i      int32
	}
	keys := make([]key, len(ps))
	for i := range ps {
		keys[i] = key{ps[i].Timestamp, ids[i], int32(i)}
	}
	// Timestamp, then series (the table is in (metric, labels) order,
	// equal content has one index), then value: the order of Compare.
	slices.SortFunc(keys, func(a, b key) int {
		if c := cmp.Compare(a.ts, b.ts); c != 0 {
			return c
		}
		if c := cmp.Compare(a.series, b.series); c != 0 {
			return c
		}
		return compareValues(ps[a.i].Value, ps[b.i].Value)
	})
	b := &Batch{Points: make([]tsstore.Point, len(ps)), ids: make([]int32, len(ps)), tab: tab}
	for j, k := range keys {
		b.Points[j] = ps[k.i]
		b.ids[j] = k.series
	}
	return b
}

// prepareSorted returns the batch of ps, which is sorted by Compare.
func prepareSorted(ps []tsstore.Point) *Batch {
	ids, tab := index(ps)
	return &Batch{Points: ps, ids: ids, tab: tab}
}

func compareValues(a, b float64) int {
	if c := cmp.Compare(a, b); c != 0 {
		return c
	}
	return cmp.Compare(math.Float64bits(a), math.Float64bits(b))
}

// index returns the series of each point and the table of distinct series
// in (metric, labels) order.
func index(ps []tsstore.Point) (ids []int32, tab []series) {
	ids = make([]int32, len(ps))
	byIdentity := make(map[identity]int32)
	var last identity
	lastID := int32(-1)
	for i := range ps {
		p := &ps[i]
		k := identity{metric: p.Metric, n: len(p.Labels)}
		if len(p.Labels) > 0 {
			k.first = &p.Labels[0]
		}
		if lastID >= 0 && k == last {
			ids[i] = lastID
			continue
		}
		id, ok := byIdentity[k]
		if !ok {
			id = int32(len(tab))
			byIdentity[k] = id
			tab = append(tab, series{metric: p.Metric, labels: p.Labels})
		}
		ids[i], last, lastID = id, k, id
	}
	order := make([]int32, len(tab))
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortFunc(order, func(a, b int32) int { return compareSeries(&tab[a], &tab[b]) })
	rank := make([]int32, len(tab))
	sorted := make([]series, 0, len(tab))
	for j, o := range order {
		if j == 0 || compareSeries(&tab[order[j-1]], &tab[o]) != 0 {
			sorted = append(sorted, tab[o])
		}
		rank[o] = int32(len(sorted) - 1)
	}
	for i := range ids {
		ids[i] = rank[ids[i]]
	}
	return ids, sorted
}

// Digest returns the content digest of the batch: Digest(b.Points).
func (b *Batch) Digest() string {
	canon := make([][]byte, len(b.tab))
	for i := range b.tab {
		canon[i] = appendSeries(nil, b.tab[i].metric, b.tab[i].labels)
	}
	h := sha256.New()
	buf := make([]byte, 0, 64<<10)
	buf = append(buf, digestHeader...)
	for i := range b.Points {
		p := &b.Points[i]
		buf = binary.BigEndian.AppendUint64(buf, uint64(p.Timestamp))
		buf = append(buf, canon[b.ids[i]]...)
		buf = binary.BigEndian.AppendUint64(buf, math.Float64bits(p.Value))
		if len(buf) >= 60<<10 {
			h.Write(buf)
			buf = buf[:0]
		}
	}
	h.Write(buf)
	return hex.EncodeToString(h.Sum(nil))
}

// columns are the indexes of the schema's leaf columns.
type columns struct {
	time, metric, key, value, label int
}

var schemaColumns = func() columns {
	at := func(path ...string) int {
		leaf, ok := Schema.Lookup(path...)
		if !ok {
			panic("segment: no column " + strings.Join(path, "."))
		}
		return leaf.ColumnIndex
	}
	return columns{
		time: at("time"), metric: at("metric"), value: at("value"),
		key: at("labels", "key_value", "key"), label: at("labels", "key_value", "value"),
	}
}()

// bytesOf returns the bytes of s without copying them; Parquet only reads
// them.
func bytesOf(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// writerOptions are the Parquet writer's options for segment name with
// content digest content.
func writerOptions(name, content string) []parquet.WriterOption {
	return []parquet.WriterOption{
		Schema,
		parquet.Compression(&zstd.Codec{}),
		// The label columns' bounds (what a reader prunes pages by) mean
		// nothing across series: they are left out of the page index and
		// the page headers. The time's and the metric's are kept.
		parquet.SkipPageBounds("labels", "key_value", "key"),
		parquet.SkipPageBounds("labels", "key_value", "value"),
		parquet.SkipPageStatistics("labels", "key_value", "key"),
		parquet.SkipPageStatistics("labels", "key_value", "value"),
		parquet.CreatedBy("hourglass", "", ""),
		parquet.KeyValueMetadata(KeyName, name),
		parquet.KeyValueMetadata(KeyContent, content),
		parquet.KeyValueMetadata(KeyFormat, Format),
	}
}

// Encode writes the batch as a segment file named name with content
// digest content, column by column: each series' values (its metric, its
// labels as map entries with their repetition and definition levels) are
// made once and repeated for its points.
func (b *Batch) Encode(w io.Writer, name, content string, o EncodeOptions) error {
	rg := o.RowGroupRows
	if rg <= 0 {
		rg = DefaultRowGroupRows
	}
	col := schemaColumns
	metrics := make([]parquet.Value, len(b.tab))
	keys := make([][]parquet.Value, len(b.tab))
	labels := make([][]parquet.Value, len(b.tab))
	for i := range b.tab {
		s := &b.tab[i]
		metrics[i] = parquet.ByteArrayValue(bytesOf(s.metric)).Level(0, 0, col.metric)
		if len(s.labels) == 0 {
			// An empty map: one null entry at definition level 0.
			keys[i] = []parquet.Value{parquet.NullValue().Level(0, 0, col.key)}
			labels[i] = []parquet.Value{parquet.NullValue().Level(0, 0, col.label)}
			continue
		}
		for j, l := range s.labels {
			rep := min(j, 1)
			keys[i] = append(keys[i], parquet.ByteArrayValue(bytesOf(l.Name)).Level(rep, 1, col.key))
			labels[i] = append(labels[i], parquet.ByteArrayValue(bytesOf(l.Value)).Level(rep, 1, col.label))
		}
	}
	pw := parquet.NewWriter(w, writerOptions(name, content)...)
	const batch = 4096
	var times, ms, ks, ls, vs []parquet.Value
	fail := func(err error) error { return fmt.Errorf("encode segment %s: %w", name, err) }
	inGroup := 0
	for start := 0; start < len(b.Points); {
		n := min(batch, len(b.Points)-start, rg-inGroup)
		times, ms, ks, ls, vs = times[:0], ms[:0], ks[:0], ls[:0], vs[:0]
		for j := start; j < start+n; j++ {
			p, id := &b.Points[j], b.ids[j]
			times = append(times, parquet.Int64Value(p.Timestamp).Level(0, 0, col.time))
			ms = append(ms, metrics[id])
			ks = append(ks, keys[id]...)
			ls = append(ls, labels[id]...)
			vs = append(vs, parquet.DoubleValue(p.Value).Level(0, 0, col.value))
		}
		cws := pw.ColumnWriters()
		for _, c := range [...]struct {
			at   int
			vals []parquet.Value
		}{{col.time, times}, {col.metric, ms}, {col.key, ks}, {col.label, ls}, {col.value, vs}} {
			if _, err := cws[c.at].WriteRowValues(c.vals); err != nil {
				return fail(err)
			}
		}
		start += n
		if inGroup += n; inGroup == rg {
			if err := pw.Flush(); err != nil {
				return fail(err)
			}
			inGroup = 0
		}
	}
	if err := pw.Close(); err != nil {
		return fail(err)
	}
	return nil
}

// EncodeBytes is Encode into memory.
func (b *Batch) EncodeBytes(name, content string, o EncodeOptions) ([]byte, error) {
	var buf bytes.Buffer
	if err := b.Encode(&buf, name, content, o); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
