package writeback

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/tsstore/archive"
)

// SealedLogOwner is an optional interface of a Cache whose sealed log can
// be read into new memory: SealedLogOwned is SealedLog, except that every
// slice passed to fn is new and fn may keep it. The engine then archives
// several segments of a generation at once without copying them.
type SealedLogOwner interface {
	SealedLogOwned(ctx context.Context, gen uint64, max int, fn func([]tsstore.Point) error) error
}

// SealedColumnsReader is an optional interface of a Cache whose sealed log
// can be read column by column: SealedColumns is SealedLogOwned with each
// chunk's points (the same chunks, in the same order) in a new
// tsstore.Columns that fn may keep. With an archive that takes columns
// (archive.ColumnsAppender), the archive step then moves raw points
// without making a tsstore.Point of each.
type SealedColumnsReader interface {
	SealedColumns(ctx context.Context, gen uint64, max int, fn func(*tsstore.Columns) error) error
}

// ColumnsRecycler is an optional interface of a SealedColumnsReader: the
// engine hands each chunk back once its archive has appended it (an
// archive.ColumnsAppender keeps nothing of the columns once it returns),
// and the next chunks reuse its memory instead of allocating their own,
// some 20 bytes a point.
type ColumnsRecycler interface {
	RecycleColumns(*tsstore.Columns)
}

// archiving is the archive step of one generation, which runs in the
// background while the generation's cells are written to the store, and
// outlives a flush that ends at its budget first: the next flush of the
// generation waits for the same step instead of starting it again, so an
// archive slower than the budget delays the commit but wastes no work.
// Engine.Close stops the steps still running.
type archiving struct {
	done     chan struct{}
	err      error // set before done is closed
	segments int
	points   int64
}

// startArchiving appends the raw points of generation g to every archive
// that pr does not mark done, in the background, under the engine's
// archive context (cancelled by Close).
func (e *Engine) startArchiving(g Generation, pr *genProgress) *archiving {
	a := &archiving{done: make(chan struct{})}
	e.archWG.Add(1)
	e.admission.start()
	go func() {
		defer e.archWG.Done()
		defer close(a.done)
		// Before done: a flush that sees the step end sees it out of
		// the admission's count.
		defer e.admission.end()
		for i, arch := range e.opts.Archives {
			if pr.archivesDone[i] {
				continue
			}
			segments, points, err := e.archiveLog(e.archCtx, g.Gen, i, arch, pr)
			if err != nil {
				a.err = err
				return
			}
			pr.archivesDone[i] = true
			a.segments += segments
			a.points = max(a.points, points)
		}
	}()
	return a
}

// waitBy waits for the archive step until deadline or the end of ctx; it
// reports whether the step ended (then see a.err).
func (a *archiving) waitBy(ctx context.Context, deadline time.Time) (bool, error) {
	select {
	case <-a.done: // ended already: not an overrun, whatever the clock says
		return true, nil
	default:
	}
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case <-a.done:
		return true, nil
	case <-t.C:
		return false, nil
	case <-ctx.Done():
		return false, ctx.Err()
	}
}

// archiveSource is the archive Source of generation gen's segments: the
// writer id, or for a generation older than the id (see Cache.WriterID) the
// source it had before writer ids existed.
func (e *Engine) archiveSource(gen uint64) string {
	if gen < e.since {
		return e.legacySource
	}
	return e.writer
}

// rawChunk is one chunk of a sealed log, as points or as columns.
type rawChunk struct {
	points []tsstore.Point
	cols   *tsstore.Columns
}

func (c *rawChunk) len() int {
	if c.cols != nil {
		return c.cols.Len()
	}
	return len(c.points)
}

// timeRange returns the least and the greatest timestamp of a chunk that
// is not empty.
func (c *rawChunk) timeRange() (lo, hi int64) {
	if c.cols != nil {
		return slices.Min(c.cols.Times), slices.Max(c.cols.Times)
	}
	lo, hi = c.points[0].Timestamp, c.points[0].Timestamp
	for i := range c.points {
		lo, hi = min(lo, c.points[i].Timestamp), max(hi, c.points[i].Timestamp)
	}
	return lo, hi
}

// readSealed calls fn with each chunk of generation gen's sealed log, in
// memory fn may keep: as columns when the cache can give them and want is
// set, else as points.
func (e *Engine) readSealed(ctx context.Context, gen uint64, want bool, fn func(rawChunk) error) error {
	max := e.opts.SegmentPoints
	if r, ok := e.cache.(SealedColumnsReader); ok && want {
		return r.SealedColumns(ctx, gen, max, func(c *tsstore.Columns) error { return fn(rawChunk{cols: c}) })
	}
	if o, ok := e.cache.(SealedLogOwner); ok {
		return o.SealedLogOwned(ctx, gen, max, func(ps []tsstore.Point) error { return fn(rawChunk{points: ps}) })
	}
	return e.cache.SealedLog(ctx, gen, max, func(ps []tsstore.Point) error {
		// The cache's slice is only valid during this call.
		return fn(rawChunk{points: slices.Clone(ps)})
	})
}

// appendChunk appends a chunk to arch as segment id: as columns when it has
// them (readSealed reads columns only for an archive that takes them).
func appendChunk(ctx context.Context, arch archive.Archive, id archive.SegmentID, c rawChunk) error {
	var err error
	if c.cols != nil {
		_, err = arch.(archive.ColumnsAppender).AppendColumns(ctx, id, c.cols)
	} else {
		_, err = arch.Append(ctx, id, c.points)
	}
	return err
}

// archiveLog appends the sealed log of generation gen to arch (the i-th
// archive) as segments of at most SegmentPoints points, encoding up to
// GOMAXPROCS segments at a time, and skipping the segments pr records as
// appended by an earlier pass that failed. Segment names and contents do
// not depend on the concurrency: part numbers follow the log's order.
func (e *Engine) archiveLog(ctx context.Context, gen uint64, i int, arch archive.Archive, pr *genProgress) (segments int, points int64, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex // guards first and done
		first error
	)
	done := pr.segmentsDone[i]
	if done == nil {
		done = map[int]bool{}
		pr.segmentsDone[i] = done
	}
	slots := make(chan struct{}, runtime.GOMAXPROCS(0))
	_, columns := arch.(archive.ColumnsAppender)
	err = e.readSealed(ctx, gen, columns, func(c rawChunk) error {
		shard := segments
		segments++
		points += int64(c.len())
		mu.Lock()
		skip := done[shard]
		mu.Unlock()
		if skip {
			return nil
		}
		lo, hi := c.timeRange()
		id := archive.SegmentID{Source: e.archiveSource(gen), Generation: gen, Shard: shard, MinTime: lo, MaxTime: hi}
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
		wg.Go(func() {
			defer func() { <-slots }()
			// Only the argument keeps the chunk: an archive may drop it
			// once it has made its own copy (sorted, encoded).
			chunk := c
			c = rawChunk{}
			err := appendChunk(ctx, arch, id, chunk)
			if r, ok := e.cache.(ColumnsRecycler); ok && chunk.cols != nil {
				r.RecycleColumns(chunk.cols)
			}
			if err == nil {
				e.admission.progress()
			}
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				done[shard] = true
			} else if first == nil {
				first = fmt.Errorf("archive %d: append segment %s: %w", i, id.Name(), err)
				cancel()
			}
		})
		return nil
	})
	wg.Wait()
	if first != nil {
		return 0, 0, first
	}
	if err != nil {
		return 0, 0, err
	}
	return segments, points, nil
}
