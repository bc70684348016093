package segment

import (
	"cmp"
	"encoding/binary"
	"math"
	"math/bits"
	"slices"
	"strings"
	"sync"
	"unsafe"

	"github.com/hourglass-io/hourglass/tsstore"
)

// Batch is the points of one segment prepared once for Digest and Encode,
// column by column and free of pointers: the table of the distinct series
// (metric and labels) in (metric, labels) order, and for each point, in the
// order of Compare, the index of its series in the table, its timestamp and
// its value. The sort, the digest and the Parquet columns handle a series'
// strings once rather than once per point, and the garbage collector does
// not scan the point columns. Not safe for concurrent use.
type Batch struct {
	tab    []tsstore.SeriesLabels // the distinct series, in (metric, labels) order
	ids    []int32                // the series of each point: an index into tab
	times  []int64
	values []float64
}

// Len returns the number of points.
func (b *Batch) Len() int { return len(b.times) }

// Point returns the i-th point in the order of Compare. Its labels are
// shared with the batch's input.
func (b *Batch) Point(i int) tsstore.Point {
	s := &b.tab[b.ids[i]]
	return tsstore.Point{Metric: s.Metric, Labels: s.Labels, Timestamp: b.times[i], Value: b.values[i]}
}

// Points returns the points in the order of Compare.
func (b *Batch) Points() []tsstore.Point {
	ps := make([]tsstore.Point, b.Len())
	for i := range ps {
		ps[i] = b.Point(i)
	}
	return ps
}

// ColumnsOf returns the columns of ps (in the order of ps), whose series
// table has an entry per labels slice and metric: points that share the
// memory of their labels (as points decoded from a log or parsed from one
// request do) are grouped without looking at the labels. Content-equal
// series in other memory have entries of their own.
func ColumnsOf(ps []tsstore.Point) *tsstore.Columns {
	c := &tsstore.Columns{IDs: make([]int32, len(ps)), Times: make([]int64, len(ps)), Values: make([]float64, len(ps))}
	c.Series = index(ps, c.IDs)
	for i := range ps {
		c.Times[i], c.Values[i] = ps[i].Timestamp, ps[i].Value
	}
	return c
}

// Prepare returns the batch of ps (in any order), which it does not
// modify: PrepareColumns(ColumnsOf(ps)).
func Prepare(ps []tsstore.Point) *Batch { return PrepareColumns(ColumnsOf(ps)) }

// PrepareColumns returns the batch of the columns c, which must pass
// c.Check. It takes c: the batch keeps and reorders its point slices.
// Series of c that no point has are left out; content-equal series are
// one.
func PrepareColumns(c *tsstore.Columns) *Batch {
	sc := scratchPool.Get().(*scratch)
	defer scratchPool.Put(sc)
	tab, rank := rankSeries(c.Series, c.IDs, sc)
	b := &Batch{tab: tab, ids: c.IDs, times: c.Times, values: c.Values}
	n := b.Len()
	if n == 0 {
		return b
	}
	k, ok := layout(b.times, len(tab))
	if !ok {
		for i, id := range b.ids {
			b.ids[i] = rank[id]
		}
		order := sortOrder(b.times, b.ids, b.values)
		ids, times, values := slices.Clone(b.ids), slices.Clone(b.times), slices.Clone(b.values)
		for j, i := range order {
			b.ids[j], b.times[j], b.values[j] = ids[i], times[i], values[i]
		}
		return b
	}
	sc.grow(n)
	keys := sortKeys(b.times, b.ids, rank, k, sc)
	// The keys hold the time and the series: only values move, into the
	// half of the scratch the sorted keys are not in. A run of points of
	// one time and series is then sorted by value.
	free := sc.tmp
	if &keys[0] == &sc.tmp[0] {
		free = sc.keys
	}
	values := unsafe.Slice((*float64)(unsafe.Pointer(&free[0])), n)
	idxMask, rankMask := uint64(1)<<k.idxBits-1, uint64(1)<<k.rankBits-1
	run, prev := 0, ^uint64(0)
	for j, key := range keys {
		values[j] = b.values[key&idxMask]
		key >>= k.idxBits
		if key != prev {
			if j-run > 1 {
				slices.SortFunc(values[run:j], compareValues)
			}
			run, prev = j, key
		}
		b.ids[j] = int32(key & rankMask)
		b.times[j] = k.lo + int64(key>>k.rankBits)
	}
	if n-run > 1 {
		slices.SortFunc(values[run:n], compareValues)
	}
	copy(b.values, values)
	return b
}

// scratch is the memory of a PrepareColumns that does not outlive it,
// reused by the next (a flush prepares segment after segment): the keys of
// the points and the radix sort's, and rankSeries'.
type scratch struct {
	keys, tmp []uint64
	count     [][1 << radixDigit]int

	used      []bool
	series    []string // the series' keys (rankSeries), views of buf
	seriesTmp []string // the radix sort's of series
	buf       []byte
	rank      []int32
}

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

// grow makes the sort's slices n long (and keeps the rest).
func (s *scratch) grow(n int) {
	s.keys, s.tmp = resize(s.keys, n), resize(s.tmp, n)
}

// resize returns s, or a new slice when it is too small, n long.
func resize[S ~[]E, E any](s S, n int) S {
	if cap(s) < n {
		return make(S, n)
	}
	return s[:n]
}

// rankSeries returns the distinct series of tab that ids name, in (metric,
// labels) order, and the index in it of each series of tab. The series are sorted by
// an order-preserving binary key each (sorted by bytes, rather than
// compared string by string).
//
// The rank and the memory of the keys are sc's.
func rankSeries(tab []tsstore.SeriesLabels, ids []int32, sc *scratch) (sorted []tsstore.SeriesLabels, rank []int32) {
	sc.used = resize(sc.used, len(tab))
	used := sc.used
	clear(used)
	for _, id := range ids {
		used[id] = true
	}
	size := 0
	for i := range tab {
		if used[i] {
			size += seriesKeySize(&tab[i]) + 6
		}
	}
	// A key is followed by 00 00 (less than any byte pair that can extend
	// a key, so a key still sorts before its extensions) and the series'
	// index (4 bytes: equal keys sort by index), so that the keys sort as
	// plain strings, are distinct, and none is a prefix of another (00 00
	// is in no key: sortPrefixFree's condition).
	keys := slices.Grow(sc.series[:0], len(tab))
	buf := slices.Grow(sc.buf[:0], size)
	for i, u := range used {
		if u {
			start := len(buf)
			buf = appendSeriesKey(buf, &tab[i])
			buf = binary.BigEndian.AppendUint32(append(buf, 0, 0), uint32(i))
			// A view of buf's array at the time: an append that moves buf
			// leaves it.
			keys = append(keys, unsafe.String(unsafe.SliceData(buf[start:]), len(buf)-start))
		}
	}
	sc.seriesTmp = resize(sc.seriesTmp, len(keys))
	sortPrefixFree(keys, sc.seriesTmp, 0)
	// Kept for the next call: the views of buf into whatever array they
	// are in (an append that moved buf left the others in the old one).
	sc.series, sc.buf = keys, buf
	sc.rank = resize(sc.rank, len(tab))
	rank = sc.rank
	sorted = make([]tsstore.SeriesLabels, 0, len(keys))
	for j, k := range keys {
		i := binary.BigEndian.Uint32([]byte(k[len(k)-4:]))
		if j == 0 || keys[j-1][:len(keys[j-1])-6] != k[:len(k)-6] {
			sorted = append(sorted, tab[i])
		}
		rank[i] = int32(len(sorted) - 1)
	}
	return sorted, rank
}

// seriesKeySize returns the size of the key of s when no string of it
// holds a 0x00 byte (its least size).
func seriesKeySize(s *tsstore.SeriesLabels) int {
	n := len(s.Metric) + 2
	for _, l := range s.Labels {
		n += len(l.Name) + len(l.Value) + 4
	}
	return n
}

// appendSeriesKey appends to b the key of s whose byte order is the
// (metric, labels) order: the metric, then each label's name and value,
// each string with its 0x00 bytes escaped as 00 ff and ended by 00 01 (so
// that a string sorts before its extensions, and a label set before its
// extensions).
func appendSeriesKey(b []byte, s *tsstore.SeriesLabels) []byte {
	b = appendKeyString(b, s.Metric)
	for _, l := range s.Labels {
		b = appendKeyString(b, l.Name)
		b = appendKeyString(b, l.Value)
	}
	return b
}

func appendKeyString(b []byte, s string) []byte {
	if strings.IndexByte(s, 0) < 0 {
		b = append(b, s...)
	} else {
		for i := 0; i < len(s); i++ {
			if s[i] == 0 {
				b = append(b, 0, 0xff)
			} else {
				b = append(b, s[i])
			}
		}
	}
	return append(b, 0, 1)
}

// keyLayout is how a sort key packs a point: from the high bits down, its
// timestamp less lo (tsBits), its series (rankBits) and its index
// (idxBits).
type keyLayout struct {
	lo                        int64
	tsBits, rankBits, idxBits int
}

// layout returns the key layout of points at times of series series, and
// whether it fits in 64 bits (the timestamps of a segment span minutes,
// its series are thousands, its points a million: some 60 bits).
func layout(times []int64, series int) (keyLayout, bool) {
	lo, hi := times[0], times[0]
	for _, t := range times {
		lo, hi = min(lo, t), max(hi, t)
	}
	k := keyLayout{lo: lo, tsBits: bits.Len64(uint64(hi - lo)), rankBits: bits.Len32(uint32(series)), idxBits: bits.Len64(uint64(len(times)))}
	return k, k.tsBits+k.rankBits+k.idxBits <= 64
}

// radixDigit is the most bits a pass of the radix sort sorts by: 3
// passes sort a segment of minutes and tens of thousands of series.
const radixDigit = 13

// sortKeys returns the keys of the points (of series rank[ids[i]]) sorted
// by time and series (a stable LSD radix sort on all bits but the index,
// whose digits are counted as the keys are made), in sc's keys and tmp,
// as long as times: the sorted keys are one of them.
func sortKeys(times []int64, ids, rank []int32, k keyLayout, sc *scratch) []uint64 {
	keys, tmp := sc.keys, sc.tmp
	from, width := k.idxBits, k.tsBits+k.rankBits
	passes := (width + radixDigit - 1) / radixDigit
	digit := 0
	if passes > 0 {
		digit = (width + passes - 1) / passes
	}
	mask := uint64(1)<<digit - 1
	sc.count = resize(sc.count, passes)
	count := sc.count
	clear(count)
	for i, t := range times {
		key := (uint64(t-k.lo)<<k.rankBits | uint64(rank[ids[i]])) << k.idxBits
		keys[i] = key | uint64(i)
		key >>= from
		for p := range count {
			count[p][key&mask]++
			key >>= digit
		}
	}
	a := keys
	for p := range count {
		shift := from + p*digit
		c := &count[p]
		if c[(a[0]>>shift)&mask] == len(a) {
			continue // one bucket: nothing moves
		}
		sum := 0
		for d, n := range c {
			c[d] = sum
			sum += n
		}
		for _, key := range a {
			d := (key >> shift) & mask
			tmp[c[d]] = key
			c[d]++
		}
		a, tmp = tmp, a
	}
	return a
}

// sortOrder returns the indexes of the points in the order of Compare, by
// a comparison sort: for the rare segment whose keys do not fit sortKeys.
func sortOrder(times []int64, ids []int32, values []float64) []int32 {
	order := make([]int32, len(times))
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortFunc(order, func(a, b int32) int {
		if c := cmp.Compare(times[a], times[b]); c != 0 {
			return c
		}
		if c := cmp.Compare(ids[a], ids[b]); c != 0 {
			return c
		}
		return compareValues(values[a], values[b])
	})
	return order
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
// the table of series, in order of first appearance. Points are grouped by
// the memory of their labels and metric, not their content (interned
// strings and shared label sets make that a series' identity): a map keyed
// by the labels' first element, then the few metrics of each.
func index(ps []tsstore.Point, ids []int32) (tab []tsstore.SeriesLabels) {
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
			tab = append(tab, tsstore.SeriesLabels{Metric: p.Metric, Labels: p.Labels})
		}
		ids[i] = id
	}
	return tab
}
