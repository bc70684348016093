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
	"math/bits"
	"slices"
	"strings"
	"sync"
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

// Prepare returns the batch of ps (in any order), which it does not modify.
func Prepare(ps []tsstore.Point) *Batch {
	sc := scratchPool.Get().(*scratch)
	defer scratchPool.Put(sc)
	sc.grow(len(ps))
	tab := index(ps, sc.ids)
	keys := sortKeys(ps, sc.ids, len(tab), sc.keys, sc.tmp)
	b := &Batch{Points: make([]tsstore.Point, len(ps)), ids: make([]int32, len(ps)), tab: tab}
	for j, k := range keys {
		b.Points[j] = ps[k.i]
		b.ids[j] = sc.ids[k.i]
	}
	return b
}

// scratch is the memory of a Prepare that does not outlive it, reused by
// the next (a flush prepares segment after segment).
type scratch struct {
	ids       []int32
	keys, tmp []sortKey
}

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

// grow makes the slices n long.
func (s *scratch) grow(n int) {
	if cap(s.ids) < n {
		s.ids, s.keys, s.tmp = make([]int32, n), make([]sortKey, n), make([]sortKey, n)
	}
	s.ids, s.keys, s.tmp = s.ids[:n], s.keys[:n], s.tmp[:n]
}

// sortKey is a point's place in the order of Compare: its timestamp and
// series rank packed in key (ties broken by value), and its index.
type sortKey struct {
	key uint64
	i   int32
}

// sortKeys returns the points' keys in the order of Compare: timestamp,
// then series (the table is in (metric, labels) order, equal content has
// one index), then value. Keys are sorted by a radix sort (the
// timestamps of a segment span minutes, its series are thousands: some 40
// bits), then each run of equal keys by value.
// keys and tmp are len(ps) long; the sorted keys are one of them.
func sortKeys(ps []tsstore.Point, ids []int32, series int, keys, tmp []sortKey) []sortKey {
	if len(ps) == 0 {
		return keys
	}
	lo, hi := ps[0].Timestamp, ps[0].Timestamp
	for i := range ps {
		lo, hi = min(lo, ps[i].Timestamp), max(hi, ps[i].Timestamp)
	}
	rankBits := bits.Len32(uint32(series))
	tsBits := bits.Len64(uint64(hi - lo))
	byValue := func(a, b sortKey) int { return compareValues(ps[a.i].Value, ps[b.i].Value) }
	if rankBits+tsBits > 64 {
		for i := range ps {
			keys[i] = sortKey{uint64(ids[i]), int32(i)}
		}
		slices.SortFunc(keys, func(a, b sortKey) int {
			if c := cmp.Compare(ps[a.i].Timestamp, ps[b.i].Timestamp); c != 0 {
				return c
			}
			if c := cmp.Compare(a.key, b.key); c != 0 {
				return c
			}
			return byValue(a, b)
		})
		return keys
	}
	for i := range ps {
		keys[i] = sortKey{uint64(ps[i].Timestamp-lo)<<rankBits | uint64(ids[i]), int32(i)}
	}
	keys = radixSort(keys, tmp, rankBits+tsBits)
	for i := 0; i < len(keys); {
		j := i + 1
		for j < len(keys) && keys[j].key == keys[i].key {
			j++
		}
		if j-i > 1 {
			slices.SortFunc(keys[i:j], byValue)
		}
		i = j
	}
	return keys
}

// radixSort sorts a by the low bits of key (a stable LSD radix sort,
// using tmp, as long as a) and returns the sorted slice (a or tmp).
func radixSort(a, tmp []sortKey, bits int) []sortKey {
	const digit = 11
	const mask = 1<<digit - 1
	var count [1 << digit]int
	for shift := 0; shift < bits; shift += digit {
		clear(count[:])
		for _, k := range a {
			count[(k.key>>shift)&mask]++
		}
		if count[(a[0].key>>shift)&mask] == len(a) {
			continue // one bucket: nothing moves
		}
		sum := 0
		for d, c := range count {
			count[d] = sum
			sum += c
		}
		for _, k := range a {
			d := (k.key >> shift) & mask
			tmp[count[d]] = k
			count[d]++
		}
		a, tmp = tmp, a
	}
	return a
}

// prepareSorted returns the batch of ps, which is sorted by Compare.
func prepareSorted(ps []tsstore.Point) *Batch {
	ids := make([]int32, len(ps))
	return &Batch{Points: ps, ids: ids, tab: index(ps, ids)}
}

func compareValues(a, b float64) int {
	if c := cmp.Compare(a, b); c != 0 {
		return c
	}
	return cmp.Compare(math.Float64bits(a), math.Float64bits(b))
}

// metricID is a series of a labels slice: its metric's memory and its
// index in the table.
type metricID struct {
	metric *byte
	m      int
	n      int // the labels' length
	id     int32
}

// index sets the series of each point in ids (as long as ps) and returns
// the table of distinct series in (metric, labels) order. Points are grouped by the memory of their
// labels and metric, not their content (interned strings and shared label
// sets make that a series' identity): a map keyed by the labels' first
// element, then the few metrics of each.
func index(ps []tsstore.Point, ids []int32) (tab []series) {
	byLabels := make(map[*tsstore.Label]int32)
	var groups [][]metricID
	var last *tsstore.Label // the fields of a line follow each other
	lastG := int32(-1)
	for i := range ps {
		p := &ps[i]
		var first *tsstore.Label
		if len(p.Labels) > 0 {
			first = &p.Labels[0]
		}
		g := lastG
		if first != last || g < 0 {
			var ok bool
			if g, ok = byLabels[first]; !ok {
				g = int32(len(groups))
				byLabels[first] = g
				groups = append(groups, nil)
			}
			last, lastG = first, g
		}
		mp, id := unsafe.StringData(p.Metric), int32(-1)
		for _, x := range groups[g] {
			if x.metric == mp && x.m == len(p.Metric) && x.n == len(p.Labels) {
				id = x.id
				break
			}
		}
		if id < 0 {
			id = int32(len(tab))
			groups[g] = append(groups[g], metricID{mp, len(p.Metric), len(p.Labels), id})
			tab = append(tab, series{metric: p.Metric, labels: p.Labels})
		}
		ids[i] = id
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
	return sorted
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
			// Required flat columns ignore levels and column indexes.
			times = append(times, parquet.Int64Value(p.Timestamp))
			ms = append(ms, metrics[id])
			ks = append(ks, keys[id]...)
			ls = append(ls, labels[id]...)
			vs = append(vs, parquet.DoubleValue(p.Value))
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
