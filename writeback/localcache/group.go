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
// and the merger look at their content once per series). It keeps its
// buffers between batches. Not safe for concurrent use.
type grouper struct {
	ids  identTable
	cols tsstore.Columns
}

func newGrouper() *grouper { return &grouper{} }

// group returns points as columns, valid until the next call of group or
// release; the series share the points' strings and label slices.
func (g *grouper) group(points []tsstore.Point) *tsstore.Columns {
	g.ids.reset()
	c := &g.cols
	c.Series, c.IDs, c.Times, c.Values = c.Series[:0], c.IDs[:0], c.Times[:0], c.Values[:0]
	last, lastID := identity{}, int32(-1)
	for i := range points {
		p := &points[i]
		k := identityOf(p.Metric, p.Labels)
		if k != last || lastID < 0 {
			slot := g.ids.find(k)
			if slot.id < 0 {
				slot.id = int32(len(c.Series))
				c.Series = append(c.Series, tsstore.SeriesLabels{Metric: p.Metric, Labels: p.Labels})
			}
			last, lastID = k, slot.id
		}
		c.IDs = append(c.IDs, lastID)
		c.Times = append(c.Times, p.Timestamp)
		c.Values = append(c.Values, p.Value)
	}
	return c
}

// release drops the grouper's references to the last batch's memory.
func (g *grouper) release() {
	clear(g.cols.Series)
}

// identTable is a hash table from identities to series ids, for one batch
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
