package localcache

import (
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/writeback"
)

// generation holds the cells of one generation in shards.
type generation struct {
	num    uint64
	path   string
	shards []shard
	// sealed is set under the cache's genMu write lock.
	sealed bool

	points     atomic.Int64
	cells      atomic.Int64
	bytes      atomic.Int64
	firstWrite atomic.Int64 // unix nanoseconds; 0 until the first write
}

type shard struct {
	mu       sync.Mutex        // guards series, byMetric, byIndex and the entries' cells
	series   map[string]*entry // by series key (metric + labels)
	byMetric map[string][]*entry
	byIndex  map[string][]*entry // by metric + "\xff" + value of the index label
}

type entry struct {
	metric string
	labels tsstore.Labels
	cells  []cellAgg // few per generation: searched from the end
}

type cellAgg struct {
	start int64
	agg   tsstore.Agg
}

// Estimated memory per series entry and per cell, for Stats.Bytes.
const (
	entryOverhead = 160
	cellBytes     = 48
)

func newGeneration(num uint64, path string, shards int) *generation {
	g := &generation{num: num, path: path, shards: make([]shard, shards)}
	for i := range g.shards {
		g.shards[i] = shard{series: make(map[string]*entry), byMetric: make(map[string][]*entry), byIndex: make(map[string][]*entry)}
	}
	return g
}

// merger merges points into a generation; it keeps its buffers between
// batches. Not safe for concurrent use.
type merger struct {
	// Per series of the columns: its key, shard and entry (once found),
	// so that a series' key is built and hashed once per batch.
	key     []byte
	ends    []int    // end offset of each series' key in key
	entries []*entry // each series' entry in the generation, once found
	shards  []int32  // each series' shard
	order   [][]int  // point indexes per shard
}

var mergerPool = sync.Pool{New: func() any { return &merger{} }}

// merge adds the points of cols to g's cells of width w and returns the
// growth of cells and bytes.
func (m *merger) merge(g *generation, cols *tsstore.Columns, w time.Duration, indexLabel string) (newCells, newBytes int64) {
	clear(m.entries) // they belong to another generation
	m.key, m.ends, m.entries, m.shards = m.key[:0], m.ends[:0], m.entries[:0], m.shards[:0]
	n := len(g.shards)
	if cap(m.order) < n {
		m.order = make([][]int, n)
	}
	m.order = m.order[:n]
	for i := range m.order {
		m.order[i] = m.order[i][:0]
	}
	for i := range cols.Series {
		start := len(m.key)
		m.key = appendSeriesKey(m.key, &cols.Series[i])
		m.ends = append(m.ends, len(m.key))
		m.entries = append(m.entries, nil)
		m.shards = append(m.shards, int32(xxhash.Sum64(m.key[start:])%uint64(n)))
	}
	for i, id := range cols.IDs {
		m.order[m.shards[id]] = append(m.order[m.shards[id]], i)
	}
	wms := w.Milliseconds()
	for si, idxs := range m.order {
		if len(idxs) == 0 {
			continue
		}
		sh := &g.shards[si]
		sh.mu.Lock()
		for _, i := range idxs {
			id := cols.IDs[i]
			e := m.entries[id]
			if e == nil {
				from := 0
				if id > 0 {
					from = m.ends[id-1]
				}
				k := m.key[from:m.ends[id]]
				e = sh.series[string(k)]
				if e == nil {
					s := &cols.Series[id]
					e = &entry{metric: strings.Clone(s.Metric), labels: cloneLabels(s.Labels)}
					key := string(k)
					sh.series[key] = e
					sh.byMetric[e.metric] = append(sh.byMetric[e.metric], e)
					if v := e.labels.Get(indexLabel); v != "" {
						ik := e.metric + "\xff" + v
						sh.byIndex[ik] = append(sh.byIndex[ik], e)
					}
					newBytes += int64(entryOverhead + 2*len(key))
				}
				m.entries[id] = e
			}
			t, v := cols.Times[i], cols.Values[i]
			start := t - mod(t, wms)
			found := false
			for j := len(e.cells) - 1; j >= 0; j-- {
				if e.cells[j].start == start {
					e.cells[j].agg.Add(v)
					found = true
					break
				}
			}
			if !found {
				e.cells = append(e.cells, cellAgg{start: start, agg: tsstore.AggOf(v)})
				newCells++
				newBytes += cellBytes
			}
		}
		sh.mu.Unlock()
	}
	return newCells, newBytes
}

func mod(a, b int64) int64 {
	r := a % b
	if r < 0 {
		r += b
	}
	return r
}

func appendSeriesKey(b []byte, s *tsstore.SeriesLabels) []byte {
	b = append(b, s.Metric...)
	b = append(b, 0xfd)
	for _, l := range s.Labels {
		b = append(b, l.Name...)
		b = append(b, 0xfe)
		b = append(b, l.Value...)
		b = append(b, 0xff)
	}
	return b
}

func cloneLabels(ls tsstore.Labels) tsstore.Labels {
	out := make(tsstore.Labels, len(ls))
	for i, l := range ls {
		out[i] = tsstore.Label{Name: strings.Clone(l.Name), Value: strings.Clone(l.Value)}
	}
	return out
}

// selectCells appends the cells of g selected by sel to out.
func (g *generation) selectCells(out []writeback.GenCell, sel *tsstore.Selector, indexLabel string) []writeback.GenCell {
	var indexValue string
	for i := range sel.Matchers {
		m := &sel.Matchers[i]
		if m.Type == tsstore.MatchEqual && m.Name == indexLabel && m.Value != "" {
			indexValue = m.Value
		}
	}
	for si := range g.shards {
		sh := &g.shards[si]
		sh.mu.Lock()
		var list []*entry
		if indexValue != "" {
			list = sh.byIndex[sel.Metric+"\xff"+indexValue]
		} else {
			list = sh.byMetric[sel.Metric]
		}
		for _, e := range list {
			if !tsstore.MatchLabels(sel.Matchers, e.labels) {
				continue
			}
			for _, c := range e.cells {
				if c.start >= sel.From && c.start < sel.To {
					out = append(out, writeback.GenCell{
						Cell:   tsstore.Cell{Metric: e.metric, Labels: e.labels, Start: c.start, Agg: c.agg},
						Gen:    g.num,
						Sealed: g.sealed,
					})
				}
			}
		}
		sh.mu.Unlock()
	}
	return out
}

// cellList is the cells of a sealed generation in flush order, each named
// by its series' entry and its index in the entry's cells: 8 bytes a cell
// instead of a tsstore.Cell's 104. A sealed generation does not change
// (appends merge under genMu's read lock, which Seal takes for writing),
// so the list reads its entries without the shards' locks.
type cellList struct {
	entries []*entry // in (metric, labels) order
	refs    []cellRef
}

type cellRef struct{ entry, cell int32 }

// listCells lists g's cells in flush order. It sorts the series, which
// are far fewer than the cells, and places each series' cells by start.
func (g *generation) listCells() *cellList {
	var entries []*entry
	perStart := make(map[int64]int)
	for si := range g.shards {
		sh := &g.shards[si]
		sh.mu.Lock()
		for _, e := range sh.series {
			entries = append(entries, e)
			for _, c := range e.cells {
				perStart[c.start]++
			}
		}
		sh.mu.Unlock()
	}
	slices.SortFunc(entries, func(a, b *entry) int {
		return tsstore.SeriesLabels{Metric: a.metric, Labels: a.labels}.Compare(tsstore.SeriesLabels{Metric: b.metric, Labels: b.labels})
	})
	starts := slices.Sorted(maps.Keys(perStart))
	next := 0
	for _, s := range starts {
		n := perStart[s]
		perStart[s] = next
		next += n
	}
	refs := make([]cellRef, next)
	for ei, e := range entries {
		for ci, c := range e.cells {
			i := perStart[c.start]
			perStart[c.start] = i + 1
			refs[i] = cellRef{entry: int32(ei), cell: int32(ci)}
		}
	}
	return &cellList{entries: entries, refs: refs}
}

// Len implements writeback.CellList.
func (l *cellList) Len() int { return len(l.refs) }

// AppendCells implements writeback.CellList.
func (l *cellList) AppendCells(dst []tsstore.Cell, from, to int) []tsstore.Cell {
	for _, r := range l.refs[from:to] {
		e := l.entries[r.entry]
		c := &e.cells[r.cell]
		dst = append(dst, tsstore.Cell{Metric: e.metric, Labels: e.labels, Start: c.start, Agg: c.agg})
	}
	return dst
}
