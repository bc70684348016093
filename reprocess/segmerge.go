package reprocess

import (
	"cmp"
	"container/heap"
	"context"
	"slices"
	"sync"

	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/tsstore/archive"
)

// mergeBatch is the number of points a segment reader hands over at once.
const mergeBatch = 1024

// mergeSegments calls fn for the points of exactly the segments segs (not
// whatever else the archive holds) with a timestamp in [from, to) and
// labels matching ms, in timestamp order (ties in the order of segs). A
// segment is opened when the merge reaches its MinTime, so only the
// segments overlapping the current time are open at once; each is read by
// a goroutine of its own, ahead of the merge by a batch.
func mergeSegments(ctx context.Context, a archive.Archive, segs []SegmentRef, from, to int64, ms []tsstore.Matcher, fn func(tsstore.Point) error) (err error) {
	order := make([]int, 0, len(segs))
	for i, s := range segs {
		if s.MaxTime >= from && s.MinTime < to {
			order = append(order, i)
		}
	}
	slices.SortStableFunc(order, func(x, y int) int { return cmp.Compare(segs[x].MinTime, segs[y].MinTime) })
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	h := &readerHeap{}
	defer func() {
		cancel()
		for _, r := range *h {
			for range r.ch { // let the reader see the cancellation
			}
		}
		wg.Wait()
	}()
	open := func(idx int) error {
		r := &segReader{idx: idx, ch: make(chan []tsstore.Point, 1)}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(r.ch)
			buf := make([]tsstore.Point, 0, mergeBatch)
			err := a.Read(ctx, segs[idx].Name, func(p tsstore.Point) error {
				if p.Timestamp < from || p.Timestamp >= to || !tsstore.MatchLabels(ms, p.Labels) {
					return nil
				}
				buf = append(buf, p)
				if len(buf) == mergeBatch {
					select {
					case r.ch <- buf:
					case <-ctx.Done():
						return ctx.Err()
					}
					buf = make([]tsstore.Point, 0, mergeBatch)
				}
				return nil
			})
			if err == nil && len(buf) > 0 {
				select {
				case r.ch <- buf:
				case <-ctx.Done():
					err = ctx.Err()
				}
			}
			r.err = err // read by the merge after the channel is closed
		}()
		if r.next() {
			heap.Push(h, r)
			return nil
		}
		return r.err
	}
	next := 0
	for {
		// Open every segment that may hold a point before the heap's
		// smallest one.
		for next < len(order) && (h.Len() == 0 || segs[order[next]].MinTime <= (*h)[0].head().Timestamp) {
			if err := open(order[next]); err != nil {
				return err
			}
			next++
		}
		if h.Len() == 0 {
			return nil
		}
		r := (*h)[0]
		// Emit r's points up to the next reader's head.
		limit, limitIdx := int64(1<<62), 0
		if h.Len() > 1 {
			o := (*h)[1]
			if h.Len() > 2 && h.less((*h)[2], o) {
				o = (*h)[2]
			}
			limit, limitIdx = o.head().Timestamp, o.idx
		}
		if next < len(order) {
			if m := segs[order[next]].MinTime; m < limit || m == limit && order[next] < limitIdx {
				limit, limitIdx = m, order[next]
			}
		}
		for {
			p := r.head()
			if p.Timestamp > limit || p.Timestamp == limit && r.idx > limitIdx {
				heap.Fix(h, 0)
				break
			}
			if err := fn(*p); err != nil {
				return err
			}
			r.pos++
			if r.pos == len(r.cur) && !r.next() {
				if r.err != nil {
					return r.err
				}
				heap.Pop(h)
				break
			}
		}
	}
}

type segReader struct {
	idx int
	ch  chan []tsstore.Point
	cur []tsstore.Point
	pos int
	err error
}

// next loads the next batch; false at the end (err says why).
func (r *segReader) next() bool {
	b, ok := <-r.ch
	r.cur, r.pos = b, 0
	return ok
}

func (r *segReader) head() *tsstore.Point { return &r.cur[r.pos] }

type readerHeap []*segReader

func (h readerHeap) less(a, b *segReader) bool {
	ta, tb := a.head().Timestamp, b.head().Timestamp
	return ta < tb || ta == tb && a.idx < b.idx
}
func (h readerHeap) Len() int           { return len(h) }
func (h readerHeap) Less(i, j int) bool { return h.less(h[i], h[j]) }
func (h readerHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *readerHeap) Push(x any)        { *h = append(*h, x.(*segReader)) }
func (h *readerHeap) Pop() any {
	old := *h
	r := old[len(old)-1]
	*h = old[:len(old)-1]
	return r
}
