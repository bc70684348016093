package rediscache

import (
	"cmp"
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/writeback"
)

// cellKey identifies a cell within one generation across shards.
type cellKey struct {
	gen   uint64
	field string
}

// Cells returns the selected cells of every generation: per shard and
// generation one script call that reads the fold count, the selected range
// of the index and the cells in it, all in one pipeline, merged with the
// pending cells of the memtables that the fold count says are not folded
// in what was read. With an equality matcher on the index label the range
// is that value's cells within [From, To); otherwise it is the metric's
// cells, filtered here. Cells of one generation that are in several shards
// are merged.
func (c *Cache) Cells(ctx context.Context, sel tsstore.Selector) ([]writeback.GenCell, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := sel.Validate(); err != nil {
		return nil, fmt.Errorf("rediscache: cells: %w", err)
	}
	if err := c.checkLease(); err != nil {
		return nil, err
	}
	c.mu.RLock()
	if c.closed {
		c.mu.RUnlock()
		return nil, tsstore.Errorf(tsstore.ErrClosed, "rediscache: cells")
	}
	gens := make([]*generation, 0, len(c.sealed)+1)
	gens = append(append(gens, c.sealed...), c.open)
	sealed := make([]bool, len(gens))
	// The memtables are taken before the server is read: one that is
	// folded and dropped after this point is in what the server returns.
	mems := make([][]*memtable, len(gens))
	for i, g := range gens {
		sealed[i] = g.sealed
		mems[i] = append(slices.Clone(g.frozen), g.active)
	}
	c.mu.RUnlock()

	idx := c.opts.IndexLabel
	r := selectRange(&sel, idx)
	value, byValue, lo, hi := r.value, r.byValue, r.lo, r.hi
	pipe := c.client.Pipeline()
	cmds := make([]*redis.Cmd, 0, len(gens)*c.opts.Shards)
	for _, g := range gens {
		for s := 0; s < c.opts.Shards; s++ {
			cmds = append(cmds, cellsScript.EvalSha(ctx, pipe, []string{c.keys.index(s, g.num), c.keys.cells(s, g.num), c.keys.folds(s, g.num)}, lo, hi))
		}
	}
	if err := c.execScripts(ctx, pipe, "cells"); err != nil {
		return nil, err
	}
	type found struct {
		gi  int
		f   parsedField
		agg tsstore.Agg
	}
	merged := map[cellKey]*found{}
	var order []cellKey
	add := func(gi int, field string, a tsstore.Agg) error {
		k := cellKey{gen: gens[gi].num, field: field}
		if fd := merged[k]; fd != nil {
			fd.agg.Merge(a)
			return nil
		}
		pf, err := parseField(field)
		if err != nil {
			return err
		}
		if pf.start < sel.From || pf.start >= sel.To || pf.metric != sel.Metric {
			return nil
		}
		merged[k] = &found{gi: gi, f: pf, agg: a}
		order = append(order, k)
		return nil
	}
	var pending []pendingCell
	for i, cmd := range cmds {
		gi, s := i/c.opts.Shards, i%c.opts.Shards
		vals, err := cmd.StringSlice()
		if err != nil {
			return nil, classify("cells", err)
		}
		if len(vals) == 0 {
			return nil, fmt.Errorf("rediscache: cells: empty reply from shard %d", s)
		}
		folds, _ := strconv.ParseUint(vals[0], 10, 64)
		for j := 1; j+1 < len(vals); j += 2 {
			a, err := decodeAgg(vals[j+1])
			if err != nil {
				return nil, err
			}
			if err := add(gi, vals[j], a); err != nil {
				return nil, err
			}
		}
		for _, m := range mems[gi] {
			if m == nil {
				continue
			}
			ms := &m.shards[s]
			ms.mu.Lock()
			if ms.foldTo == 0 || folds < ms.foldTo {
				pending = ms.collect(pending[:0], sel.Metric, value, byValue)
			} else {
				pending = pending[:0]
			}
			ms.mu.Unlock()
			for _, mc := range pending {
				if err := add(gi, mc.field, mc.agg); err != nil {
					return nil, err
				}
			}
		}
	}
	out := make([]writeback.GenCell, 0, len(order))
	for _, k := range order {
		fd := merged[k]
		// A generation committed while it was read may have lost some
		// of its keys already; its cells are all in the store.
		if gens[fd.gi].committed.Load() {
			continue
		}
		cell, ok, err := selectedCell(&sel, idx, fd.f, fd.agg)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, writeback.GenCell{Cell: cell, Gen: k.gen, Sealed: sealed[fd.gi]})
		}
	}
	// Still the prefix's owner after the read: no other cache can have
	// folded batches that the memtables read here hold.
	if err := c.checkLease(); err != nil {
		return nil, err
	}
	return out, nil
}

// indexRange is the part of a generation's index that a selector reads.
type indexRange struct {
	// value is the index label's value when byValue (an equality
	// matcher on the index label).
	value   string
	byValue bool
	// lo and hi bound the ZRANGE BYLEX of the index.
	lo, hi string
}

// selectRange returns the index range of sel: with an equality matcher on
// the index label idx, that value's cells within [From, To); otherwise
// the metric's cells.
func selectRange(sel *tsstore.Selector, idx string) indexRange {
	var r indexRange
	for i := range sel.Matchers {
		m := &sel.Matchers[i]
		if m.Name == idx && m.Type == tsstore.MatchEqual {
			r.value, r.byValue = m.Value, true
		}
	}
	if r.byValue {
		p := appendFieldPrefix(nil, sel.Metric, r.value)
		r.lo = "[" + string(binary.BigEndian.AppendUint64(p, uint64(sel.From)))
		r.hi = "(" + string(binary.BigEndian.AppendUint64(p, uint64(sel.To)))
	} else {
		// Every field of the metric starts with metric 0xff and goes on
		// with a label value (UTF-8, no 0xff) or, for an empty value,
		// 0xff and a start whose first byte is 0.
		r.lo, r.hi = "["+sel.Metric+"\xff", "("+sel.Metric+"\xff\xff\xff"
	}
	return r
}

// selectedCell returns the cell of field f with agg when sel selects it.
func selectedCell(sel *tsstore.Selector, idx string, f parsedField, agg tsstore.Agg) (tsstore.Cell, bool, error) {
	if f.start < sel.From || f.start >= sel.To || f.metric != sel.Metric || !matchesValue(sel.Matchers, idx, f.value) {
		return tsstore.Cell{}, false, nil
	}
	ls, err := f.labels(idx)
	if err != nil {
		return tsstore.Cell{}, false, err
	}
	if !tsstore.MatchLabels(sel.Matchers, ls) {
		return tsstore.Cell{}, false, nil
	}
	return tsstore.Cell{Metric: sel.Metric, Labels: ls, Start: f.start, Agg: agg}, true, nil
}

// matchesValue reports whether the index label value v passes the
// matchers on the index label.
func matchesValue(ms []tsstore.Matcher, idx, v string) bool {
	for i := range ms {
		if ms[i].Name == idx && !ms[i].Matches(v) {
			return false
		}
	}
	return true
}

// SealedCells folds what is pending of a sealed generation and returns
// its cells, merged across shards, in flush order (SealedCellList's).
// The cells of a series share its labels: do not modify them.
func (c *Cache) SealedCells(ctx context.Context, gen uint64) ([]tsstore.Cell, error) {
	l, err := c.SealedCellList(ctx, gen)
	if err != nil {
		return nil, err
	}
	return l.AppendCells(make([]tsstore.Cell, 0, l.Len()), 0, l.Len()), nil
}

// SealedCellList implements writeback.SealedCellLister: it folds what is
// pending of a sealed generation and lists its cells, merged across
// shards, in flush order. It pages through each shard's cells hash with
// HSCAN, so that a large generation never blocks the server. The list
// holds each series' metric and labels once (parsed from its first field)
// and 48 bytes a cell; the labels are shared: do not modify them.
func (c *Cache) SealedCellList(ctx context.Context, gen uint64) (writeback.CellList, error) {
	g, err := c.sealedGen(ctx, gen)
	if err != nil {
		return nil, err
	}
	what := fmt.Sprintf("sealed cells of generation %d", gen)
	c.foldMu.Lock()
	err = c.foldGen(ctx, g, true)
	c.foldMu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("rediscache: %s: fold: %w", what, err)
	}
	l := &cellList{}
	index := make(map[string]int, g.cells.Load()) // a cell's field: its index in l.cells
	l.cells = make([]listedCell, 0, g.cells.Load())
	seriesOf := map[string]int32{} // a series' key: its index in l.series
	var sk []byte                  // a series' key: its field less the start
	for s := 0; s < c.opts.Shards; s++ {
		// HSCAN may return a field twice; count each once per shard.
		seen := map[string]bool{}
		key := c.keys.cells(s, gen)
		var cursor uint64
		for {
			kv, next, err := c.client.HScan(ctx, key, cursor, "", 5000).Result()
			if err != nil {
				return nil, classify(what, err)
			}
			for j := 0; j+1 < len(kv); j += 2 {
				f := kv[j]
				if seen[f] {
					continue
				}
				seen[f] = true
				a, err := decodeAgg(kv[j+1])
				if err != nil {
					return nil, err
				}
				if i, ok := index[f]; ok {
					l.cells[i].agg.Merge(a)
					continue
				}
				pf, err := parseField(f)
				if err != nil {
					return nil, err
				}
				sk = append(append(append(append(sk[:0], pf.metric...), 0xff), pf.value...), 0xff)
				sk = append(sk, pf.rest...)
				si, ok := seriesOf[string(sk)]
				if !ok {
					ls, err := pf.labels(c.opts.IndexLabel)
					if err != nil {
						return nil, err
					}
					si = int32(len(l.series))
					l.series = append(l.series, tsstore.SeriesLabels{Metric: pf.metric, Labels: ls})
					seriesOf[string(sk)] = si
				}
				index[f] = len(l.cells)
				l.cells = append(l.cells, listedCell{series: si, start: pf.start, agg: a})
			}
			if cursor = next; cursor == 0 {
				break
			}
		}
	}
	l.sort()
	return l, nil
}

// cellList is a sealed generation's cells in flush order: its series
// once each, and a series index, start and aggregate a cell.
type cellList struct {
	series []tsstore.SeriesLabels
	cells  []listedCell
}

type listedCell struct {
	series int32
	start  int64
	agg    tsstore.Agg
}

// sort puts the cells in flush order: by start, then by series (metric,
// labels), which it ranks once.
func (l *cellList) sort() {
	order := make([]int32, len(l.series))
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortFunc(order, func(a, b int32) int { return l.series[a].Compare(l.series[b]) })
	rank := make([]int32, len(l.series))
	for r, i := range order {
		rank[i] = int32(r)
	}
	slices.SortFunc(l.cells, func(a, b listedCell) int {
		if c := cmp.Compare(a.start, b.start); c != 0 {
			return c
		}
		return cmp.Compare(rank[a.series], rank[b.series])
	})
}

// Len implements writeback.CellList.
func (l *cellList) Len() int { return len(l.cells) }

// AppendCells implements writeback.CellList.
func (l *cellList) AppendCells(dst []tsstore.Cell, from, to int) []tsstore.Cell {
	for i := range l.cells[from:to] {
		c := &l.cells[from+i]
		s := &l.series[c.series]
		dst = append(dst, tsstore.Cell{Metric: s.Metric, Labels: s.Labels, Start: c.start, Agg: c.agg})
	}
	return dst
}

// logCursor pages through one shard's log stream.
type logCursor struct {
	shard   int
	key     string
	entries []redis.XMessage
	last    string
	done    bool
}

const logPage = 64

func (lc *logCursor) fill(ctx context.Context, client redis.UniversalClient) error {
	if len(lc.entries) > 0 || lc.done {
		return nil
	}
	from := "-"
	if lc.last != "" {
		from = "(" + lc.last
	}
	es, err := client.XRangeN(ctx, lc.key, from, "+", logPage).Result()
	if err != nil {
		return err
	}
	lc.entries = es
	// A sealed generation's stream no longer grows.
	lc.done = len(es) < logPage
	if len(es) > 0 {
		lc.last = es[len(es)-1].ID
	}
	return nil
}

// streamID parses a stream entry ID "ms-seq".
func streamID(id string) (ms, seq uint64) {
	a, b, _ := strings.Cut(id, "-")
	ms, _ = strconv.ParseUint(a, 10, 64)
	seq, _ = strconv.ParseUint(b, 10, 64)
	return ms, seq
}

// SealedLog reads the raw points of a sealed generation from the shards'
// streams, merged in the order of the entry IDs (the server's clock, then
// shard number): the order the server applied the batches, exact for
// batches in one shard.
func (c *Cache) SealedLog(ctx context.Context, gen uint64, max int, fn func([]tsstore.Point) error) error {
	if max <= 0 {
		return tsstore.Errorf(tsstore.ErrInvalid, "rediscache: sealed log chunk size %d is not positive", max)
	}
	g, err := c.sealedGen(ctx, gen)
	if err != nil {
		return err
	}
	cursors := make([]*logCursor, c.opts.Shards)
	for s := range cursors {
		cursors[s] = &logCursor{shard: s, key: c.keys.log(s, gen)}
	}
	chunk := make([]tsstore.Point, 0, min(int64(max), g.points.Load()+1))
	var batch []tsstore.Point
	for {
		var best *logCursor
		var bms, bseq uint64
		for _, lc := range cursors {
			if err := lc.fill(ctx, c.client); err != nil {
				return classify(fmt.Sprintf("read the log of generation %d", gen), err)
			}
			if len(lc.entries) == 0 {
				continue
			}
			ms, seq := streamID(lc.entries[0].ID)
			if best == nil || ms < bms || ms == bms && seq < bseq {
				best, bms, bseq = lc, ms, seq
			}
		}
		if best == nil {
			break
		}
		e := best.entries[0]
		best.entries = best.entries[1:]
		payload, _ := e.Values["b"].(string)
		batch, err = decodeLog(batch[:0], []byte(payload))
		if err != nil {
			return fmt.Errorf("rediscache: read the log of generation %d: entry %s of shard %d: %w", gen, e.ID, best.shard, err)
		}
		rest := batch
		for len(rest) > 0 {
			n := min(max-len(chunk), len(rest))
			chunk = append(chunk, rest[:n]...)
			rest = rest[n:]
			if len(chunk) == max {
				if err := fn(chunk); err != nil {
					return err
				}
				chunk = chunk[:0]
			}
		}
	}
	if len(chunk) > 0 {
		return fn(chunk)
	}
	return nil
}
