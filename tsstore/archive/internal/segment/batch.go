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
	sortPoints(b, rank, k, sc)
	return b
}

// scratch is the memory of a PrepareColumns that does not outlive it,
// reused by the next (a flush prepares segment after segment): the sort's
// and rankSeries'.
type scratch struct {
	points []keyValue          // the points in buckets
	tmp    [cacheSize]keyValue // the memory of a split of a bucket that fits in the cache
	spare  []keyValue          // the memory of a split of a bucket larger than tmp
	count  [][]int             // the buckets of a split at each depth

	used      []bool
	series    []string // the series' keys (rankSeries), views of buf
	seriesTmp []string // the radix sort's of series
	buf       []byte
	rank      []int32
}

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

// counts returns the cleared counts of the buckets of a split at depth
// by digit bits.
func (s *scratch) counts(depth, digit int) []int {
	for len(s.count) <= depth {
		s.count = append(s.count, make([]int, 1<<bucketDigit))
	}
	c := s.count[depth][:1<<digit]
	clear(c)
	return c
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
// timestamp less lo (tsBits) and its series (rankBits).
type keyLayout struct {
	lo               int64
	tsBits, rankBits int
}

// layout returns the key layout of points at times of series series, and
// whether it fits in 64 bits (valid timestamps take at most 45 bits).
func layout(times []int64, series int) (keyLayout, bool) {
	lo, hi := times[0], times[0]
	for _, t := range times {
		lo, hi = min(lo, t), max(hi, t)
	}
	k := keyLayout{lo: lo, tsBits: bits.Len64(uint64(hi - lo)), rankBits: bits.Len32(uint32(series))}
	return k, k.tsBits+k.rankBits <= 64
}

// keyValue is a point in the sort: its key and its value, moved together
// (a look-up of each value by index after the sort is a cache miss per
// point).
type keyValue struct {
	key   uint64
	value float64
}

const (
	// bucketDigit is the most bits a split sorts by.
	bucketDigit = 12
	// A bucket of more than cacheSize points is split into buckets of
	// about bucketSize (16 KiB with their copy: the L1 cache's); one of
	// fewer (at most 128 KiB with its copy: the L2 cache's) is split in
	// scratch.tmp into buckets of about one point, then sorted by
	// insertion.
	bucketSize = 512
	cacheSize  = 4096
	// insertionSize is the most points of a bucket sorted by insertion.
	insertionSize = 16
)

// sortPoints sorts the points of b (of series rank[b.ids[i]]) by key, and
// each run of points of one key by value: an MSD radix sort whose first
// pass moves the points to buckets by their keys' high bits (the buckets
// in order, the points in each in the order of b); each bucket is then
// sorted in cache (a bucket too large for it, of points at a few times,
// is split again first). Only the order of keys and values counts: points of one
// key sorted by value are one sequence whatever their order was.
func sortPoints(b *Batch, rank []int32, k keyLayout, sc *scratch) {
	n := b.Len()
	s := &sorter{b: b, k: k, rankMask: 1<<k.rankBits - 1, sc: sc}
	width := k.tsBits + k.rankBits
	digit := splitDigit(n, width)
	shift := width - digit
	count := sc.counts(0, digit)
	for i, t := range b.times {
		count[(uint64(t-k.lo)<<k.rankBits|uint64(rank[b.ids[i]]))>>shift]++
	}
	sum := 0
	for d, c := range count {
		count[d] = sum
		sum += c
	}
	sc.points = resize(sc.points, n)
	a := sc.points
	for i, t := range b.times {
		key := uint64(t-k.lo)<<k.rankBits | uint64(rank[b.ids[i]])
		d := key >> shift
		a[count[d]] = keyValue{key, b.values[i]}
		count[d]++
	}
	// count[d] is now the end of bucket d.
	start := 0
	for _, end := range count {
		bucket := a[start:end]
		var tmp []keyValue
		switch {
		case len(bucket) <= cacheSize:
			tmp = sc.tmp[:len(bucket)]
		case shift > 0:
			// A bucket too large for the cache with bits left to sort by
			// (many points at a few times): split again in memory of its
			// own, kept for the next segment.
			sc.spare = resize(sc.spare, len(bucket))
			tmp = sc.spare
		}
		s.sort(bucket, tmp, shift, start, 1)
		start = end
	}
}

// splitDigit returns the bits to split n points by when their keys differ
// in their low bits only.
func splitDigit(n, low int) int {
	if n > cacheSize {
		n /= bucketSize
	}
	return min(low, bucketDigit, max(1, bits.Len(uint(n))))
}

// sorter is the state of a sortPoints.
type sorter struct {
	b        *Batch
	k        keyLayout
	rankMask uint64
	sc       *scratch
}

// sort sorts a, points whose keys differ in their low bits only, and
// writes them to b's columns from off. tmp, as long as a, is its
// memory for a split; depth is the number of splits above.
func (s *sorter) sort(a, tmp []keyValue, low, off, depth int) {
	switch {
	case len(a) <= 1 || low == 0:
	case len(a) <= insertionSize:
		insertionSort(a)
	default:
		s.split(a, tmp, low, off, depth)
		return
	}
	s.write(a, off)
}

// split sorts a by its next high bits into tmp and sorts each bucket, with
// a as its memory.
func (s *sorter) split(a, tmp []keyValue, low, off, depth int) {
	digit := splitDigit(len(a), low)
	shift := low - digit
	mask := uint64(1)<<digit - 1
	count := s.sc.counts(depth, digit)
	for _, p := range a {
		count[(p.key>>shift)&mask]++
	}
	if count[(a[0].key>>shift)&mask] == len(a) {
		// One bucket: nothing moves.
		s.sort(a, tmp, shift, off, depth)
		return
	}
	sum, most := 0, 0
	for d, c := range count {
		count[d] = sum
		sum += c
		most = max(most, c)
	}
	for _, p := range a {
		d := (p.key >> shift) & mask
		tmp[count[d]] = p
		count[d]++
	}
	if most <= insertionSize {
		// One insertion sort of all buckets: a point moves within its
		// bucket only.
		insertionSort(tmp)
		s.write(tmp, off)
		return
	}
	start := 0
	for _, end := range count {
		s.sort(tmp[start:end], a[start:end], shift, off+start, depth+1)
		start = end
	}
}

// insertionSort sorts a by key.
func insertionSort(a []keyValue) {
	for i := 1; i < len(a); i++ {
		p := a[i]
		j := i
		for ; j > 0 && a[j-1].key > p.key; j-- {
			a[j] = a[j-1]
		}
		a[j] = p
	}
}

// write writes the points of a, sorted by key, to b's columns from off,
// each run of one key sorted by value.
func (s *sorter) write(a []keyValue, off int) {
	b := s.b
	times, ids, values := b.times[off:off+len(a)], b.ids[off:off+len(a)], b.values[off:off+len(a)]
	run := 0
	for j, p := range a {
		times[j] = s.k.lo + int64(p.key>>s.k.rankBits)
		ids[j] = int32(p.key & s.rankMask)
		values[j] = p.value
		if p.key != a[run].key {
			if j-run > 1 {
				slices.SortFunc(values[run:j], compareValues)
			}
			run = j
		}
	}
	if len(a)-run > 1 {
		slices.SortFunc(values[run:], compareValues)
	}
}

// sortOrder returns the indexes of the points in the order of Compare, by
// a comparison sort: for the rare segment whose keys do not fit sortPoints.
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
