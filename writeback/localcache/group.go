package localcache

import (
	"unsafe"

	"github.com/hourglass-io/hourglass/tsstore"
)

// identity is where a point's metric and labels are in memory: points
// with equal identities are of the same series. A parser's interned
// series, a batch's line (whose fields share one label slice) and a
// decoder's shared label sets repeat it, so grouping points by identity
// finds a batch's series without reading a string.
type identity struct {
	metric *byte
	m      int
	labels *tsstore.Label
	n      int
}

func identityOf(metric string, ls tsstore.Labels) identity {
	k := identity{metric: unsafe.StringData(metric), m: len(metric), n: len(ls)}
	if len(ls) > 0 {
		k.labels = &ls[0]
	}
	return k
}

// grouper lays a batch's points out as columns, one series per identity
// (series of equal content in different memory stay apart: the encoder
// and the merger look at their content once per series), and the series
// out by label slice: a line's fields share one, so a line costs one hash
// lookup, and the encoder writes each label slice once. It keeps its
// buffers between batches. Not safe for concurrent use.
type grouper struct {
	cols tsstore.Columns
	sets identTable // label slices (metric nil), to set numbers
	// Per set: its first series and its number of series; per series:
	// the next of its set (-1: none). A set's series are in the order
	// they appeared.
	setFirst, setLast, setSize []int32
	next                       []int32
	// many finds the series of the sets of over maxScan series.
	many map[identity]int32
}

// maxScan bounds the search of a set's series in its list.
const maxScan = 8

func newGrouper() *grouper { return &grouper{many: make(map[identity]int32)} }

// group returns points as columns, valid until the next call of group or
// release; the series share the points' strings and label slices.
func (g *grouper) group(points []tsstore.Point) *tsstore.Columns {
	g.sets.reset()
	if len(g.many) > 0 {
		clear(g.many)
	}
	c := &g.cols
	c.Series, c.IDs, c.Times, c.Values = c.Series[:0], c.IDs[:0], c.Times[:0], c.Values[:0]
	g.setFirst, g.setLast, g.setSize, g.next = g.setFirst[:0], g.setLast[:0], g.setSize[:0], g.next[:0]
	var lastLabels identity
	set, prev := int32(-1), int32(-1)
	for i := range points {
		p := &points[i]
		ls := identityOf("", p.Labels)
		if ls != lastLabels || set < 0 {
			slot := g.sets.find(ls)
			if slot.id < 0 {
				slot.id = int32(len(g.setFirst))
				g.setFirst, g.setLast, g.setSize = append(g.setFirst, -1), append(g.setLast, -1), append(g.setSize, 0)
			}
			lastLabels, set, prev = ls, slot.id, -1
		}
		prev = g.seriesOf(p, set, prev)
		c.IDs = append(c.IDs, prev)
		c.Times = append(c.Times, p.Timestamp)
		c.Values = append(c.Values, p.Value)
	}
	return c
}

// seriesOf returns the series of p, whose labels are set's, adding it if
// it is new. prev is the series of the point before if it is of the same
// set, else -1: the search starts after it, where the next field of a
// line is.
func (g *grouper) seriesOf(p *tsstore.Point, set, prev int32) int32 {
	metric, m := unsafe.StringData(p.Metric), len(p.Metric)
	x := g.setFirst[set]
	if prev >= 0 && g.next[prev] >= 0 {
		x = g.next[prev]
	}
	n := g.setSize[set]
	for range min(n, maxScan) {
		if s := g.cols.Series[x].Metric; unsafe.StringData(s) == metric && len(s) == m {
			return x
		}
		if x = g.next[x]; x < 0 {
			x = g.setFirst[set]
		}
	}
	k := identityOf(p.Metric, p.Labels)
	if n > maxScan {
		if id, ok := g.many[k]; ok {
			return id
		}
	}
	id := int32(len(g.cols.Series))
	g.cols.Series = append(g.cols.Series, tsstore.SeriesLabels{Metric: p.Metric, Labels: p.Labels})
	g.next = append(g.next, -1)
	if last := g.setLast[set]; last >= 0 {
		g.next[last] = id
	} else {
		g.setFirst[set] = id
	}
	g.setLast[set] = id
	g.setSize[set]++
	switch {
	case n+1 > maxScan+1:
		g.many[k] = id
	case n+1 == maxScan+1: // the set outgrows its list
		for y := g.setFirst[set]; y >= 0; y = g.next[y] {
			s := &g.cols.Series[y]
			g.many[identityOf(s.Metric, s.Labels)] = y
		}
	}
	return id
}

// release drops the grouper's references to the last batch's memory.
func (g *grouper) release() {
	clear(g.cols.Series)
	clear(g.many)
}

// identTable is a hash table from identities to ids (a grouper's label
// slices to their set numbers), for one batch
// at a time: an open-addressed table of addresses (no pointers, so it
// keeps no batch alive and the garbage collector does not scan it) whose
// slots belong to the batch that stamped them. A batch's memory is alive
// while it is grouped, so its addresses name nothing else meanwhile.
type identTable struct {
	slots []identSlot // a power of two of them
	used  int         // slots of this batch
	stamp uint32      // this batch's
}

type identSlot struct {
	metric, labels uintptr
	m, n           int
	stamp          uint32
	id             int32 // -1 until the caller sets it
}

func (t *identTable) reset() {
	t.stamp++
	t.used = 0
	if t.stamp == 0 || len(t.slots) > 1<<20 {
		t.slots, t.stamp = nil, 1 // stamps wrapped, or a huge batch's table
	}
}

// find returns k's slot, new (id -1) if k was not seen in this batch.
func (t *identTable) find(k identity) *identSlot {
	if 2*(t.used+1) > len(t.slots) {
		t.grow()
	}
	metric, labels := uintptr(unsafe.Pointer(k.metric)), uintptr(unsafe.Pointer(k.labels))
	h := (uint64(metric)*0x9E3779B97F4A7C15 ^ uint64(labels)*0xC2B2AE3D27D4EB4F ^ uint64(k.m)<<32 ^ uint64(k.n)) * 0x165667B19E3779F9
	mask := uint64(len(t.slots) - 1)
	for i := h >> 32 & mask; ; i = (i + 1) & mask {
		s := &t.slots[i]
		if s.stamp != t.stamp {
			*s = identSlot{metric: metric, labels: labels, m: k.m, n: k.n, stamp: t.stamp, id: -1}
			t.used++
			return s
		}
		if s.metric == metric && s.labels == labels && s.m == k.m && s.n == k.n {
			return s
		}
	}
}

func (t *identTable) grow() {
	old := t.slots
	t.slots = make([]identSlot, max(1024, 2*len(old)))
	mask := uint64(len(t.slots) - 1)
	for _, s := range old {
		if s.stamp != t.stamp {
			continue
		}
		h := (uint64(s.metric)*0x9E3779B97F4A7C15 ^ uint64(s.labels)*0xC2B2AE3D27D4EB4F ^ uint64(s.m)<<32 ^ uint64(s.n)) * 0x165667B19E3779F9
		i := h >> 32 & mask
		for t.slots[i].stamp == t.stamp {
			i = (i + 1) & mask
		}
		t.slots[i] = s
	}
}
