// Package scan implements, once for every archive backend, the checks of
// Append's input and Scan's request, and the time-ordered k-way merge of
// segments that Scan performs.
package scan

import (
	"cmp"
	"container/heap"
	"context"
	"fmt"
	"io"
	"slices"

	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/tsstore/archive"
	"github.com/hourglass-io/hourglass/tsstore/archive/internal/manifest"
)

// ValidateAppend checks the arguments of Archive.Append, given as the
// columns of its points (in their order: see segment.ColumnsOf) or of
// ColumnsAppender.AppendColumns: a valid id, at least one point, valid
// points (each series checked once) whose timestamps lie in [MinTime,
// MaxTime]. Errors are of kind tsstore.ErrInvalid and name the segment and
// the point.
func ValidateAppend(id archive.SegmentID, c *tsstore.Columns) error {
	if err := id.Validate(); err != nil {
		return err
	}
	if c.Len() > 0 && c.Valid(id.MinTime, id.MaxTime) {
		// One pass over the points; the passes below name the fault.
		return nil
	}
	if err := c.Validate(); err != nil {
		return fmt.Errorf("segment %s: %w", id.Name(), err)
	}
	if c.Len() == 0 {
		return tsstore.Errorf(tsstore.ErrInvalid, "segment %s: no points (an empty segment is not written)", id.Name())
	}
	for i, t := range c.Times {
		if t < id.MinTime || t > id.MaxTime {
			return tsstore.Errorf(tsstore.ErrInvalid, "segment %s: point %d: timestamp %d outside the segment's range [%d, %d]",
				id.Name(), i, t, id.MinTime, id.MaxTime)
		}
	}
	return nil
}

// ValidateRange checks the range of Archive.Segments: from < to.
func ValidateRange(from, to int64) error {
	if to <= from {
		return tsstore.Errorf(tsstore.ErrInvalid, "time range is empty: from %d >= to %d", from, to)
	}
	return nil
}

// Filter is a checked ScanRequest with compiled matchers.
type Filter struct {
	From, To int64
	metric   string
	matchers []tsstore.Matcher
}

// Compile checks r (a non-empty range, a valid metric name when one is
// given, valid matchers) and compiles its matchers, on a copy: r's slice is
// not modified. Errors are of kind tsstore.ErrInvalid.
func Compile(r archive.ScanRequest) (*Filter, error) {
	if err := ValidateRange(r.From, r.To); err != nil {
		return nil, err
	}
	if r.Metric != "" {
		if err := tsstore.ValidateMetric(r.Metric); err != nil {
			return nil, err
		}
	}
	f := &Filter{From: r.From, To: r.To, metric: r.Metric, matchers: slices.Clone(r.Matchers)}
	for i := range f.matchers {
		if err := f.matchers[i].Compile(); err != nil {
			return nil, err
		}
	}
	return f, nil
}

// Match reports whether p is selected.
func (f *Filter) Match(p *tsstore.Point) bool {
	return p.Timestamp >= f.From && p.Timestamp < f.To &&
		(f.metric == "" || p.Metric == f.metric) && tsstore.MatchLabels(f.matchers, p.Labels)
}

// Cursor yields the points of one segment in timestamp order.
type Cursor interface {
	// Next returns the next point, or io.EOF after the last.
	Next() (tsstore.Point, error)
	// Close releases the cursor.
	Close() error
}

// Opener opens a cursor over the segment of a record, after verifying it.
// Its errors, and its cursor's, name the segment.
type Opener func(ctx context.Context, r manifest.Record) (Cursor, error)

// Checked wraps c so that it fails with archive.ErrCorrupt, naming the
// segment, when the points are out of order or outside the record's time
// range, or when their count differs from the record's.
func Checked(c Cursor, r manifest.Record) Cursor { return &checked{Cursor: c, rec: r, last: r.MinTime} }

type checked struct {
	Cursor
	rec  manifest.Record
	last int64
	n    int64
}

func (c *checked) Next() (tsstore.Point, error) {
	p, err := c.Cursor.Next()
	if err == io.EOF {
		if c.n != c.rec.Points {
			return p, tsstore.Errorf(archive.ErrCorrupt, "segment %s: %d points, the manifest says %d", c.rec.Name, c.n, c.rec.Points)
		}
		return p, io.EOF
	}
	if err != nil {
		return p, tsstore.Errorf(archive.ErrCorrupt, "segment %s: %w", c.rec.Name, err)
	}
	c.n++
	if p.Timestamp < c.last || p.Timestamp > c.rec.MaxTime {
		return p, tsstore.Errorf(archive.ErrCorrupt, "segment %s: point %d at %d out of order or outside [%d, %d]",
			c.rec.Name, c.n-1, p.Timestamp, c.rec.MinTime, c.rec.MaxTime)
	}
	c.last = p.Timestamp
	return p, nil
}

// checkEvery is how many points pass between checks of the context.
const checkEvery = 4096

// Each calls fn for every point of c, checking ctx now and then.
func Each(ctx context.Context, c Cursor, fn func(tsstore.Point) error) error {
	for n := 0; ; n++ {
		if n%checkEvery == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		p, err := c.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if err := fn(p); err != nil {
			return err
		}
	}
}

// Merge calls fn for the points of the segments recs (sorted by name) that
// f selects, in timestamp order, ties in the order of recs. A segment is
// opened only when the merge reaches its MinTime, so segments that do not
// overlap in time are read one after the other. The first error, from a
// segment, ctx or fn, stops the merge and is returned.
func Merge(ctx context.Context, f *Filter, recs []manifest.Record, open Opener, fn func(tsstore.Point) error) (err error) {
	order := make([]int, len(recs))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(recs[a].MinTime, recs[b].MinTime) })
	h := &cursorHeap{}
	defer func() {
		for _, it := range *h {
			if cerr := it.c.Close(); err == nil && cerr != nil {
				err = fmt.Errorf("segment %s: %w", recs[it.rank].Name, cerr)
			}
		}
	}()
	next := 0
	for n := 0; ; n++ {
		if n%checkEvery == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		for next < len(order) && (h.Len() == 0 || recs[order[next]].MinTime <= (*h)[0].p.Timestamp) {
			rank := order[next]
			next++
			if recs[rank].MaxTime < f.From || recs[rank].MinTime >= f.To {
				continue
			}
			c, err := open(ctx, recs[rank])
			if err != nil {
				return err
			}
			it := &cursorItem{c: c, rank: rank}
			ok, err := it.advance(f.From)
			if err != nil {
				_ = c.Close()
				return err
			}
			if ok {
				heap.Push(h, it)
			} else if err := c.Close(); err != nil {
				return fmt.Errorf("segment %s: %w", recs[rank].Name, err)
			}
		}
		if h.Len() == 0 {
			if next >= len(order) {
				return nil
			}
			continue
		}
		top := (*h)[0]
		if top.p.Timestamp >= f.To {
			return nil
		}
		if f.Match(&top.p) {
			if err := fn(top.p); err != nil {
				return err
			}
		}
		ok, err := top.advance(f.From)
		if err != nil {
			return err
		}
		if ok {
			heap.Fix(h, 0)
		} else {
			heap.Pop(h)
			if err := top.c.Close(); err != nil {
				return fmt.Errorf("segment %s: %w", recs[top.rank].Name, err)
			}
		}
	}
}

type cursorItem struct {
	c    Cursor
	rank int
	p    tsstore.Point
}

// advance moves to the next point at or after from; false at the end.
func (it *cursorItem) advance(from int64) (bool, error) {
	for {
		p, err := it.c.Next()
		if err == io.EOF {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		if p.Timestamp >= from {
			it.p = p
			return true, nil
		}
	}
}

type cursorHeap []*cursorItem

func (h cursorHeap) Len() int { return len(h) }
func (h cursorHeap) Less(i, j int) bool {
	if h[i].p.Timestamp != h[j].p.Timestamp {
		return h[i].p.Timestamp < h[j].p.Timestamp
	}
	return h[i].rank < h[j].rank
}
func (h cursorHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *cursorHeap) Push(x any)   { *h = append(*h, x.(*cursorItem)) }
func (h *cursorHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	*h = old[:len(old)-1]
	return it
}
