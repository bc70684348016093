package writeback

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync"

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

// archiving is the archive step of one generation's flush, which runs
// while the generation's cells are written to the store. The flush that
// starts it waits for it before it returns.
type archiving struct {
	done     chan struct{}
	cancel   context.CancelFunc
	once     sync.Once
	err      error // set before done is closed
	segments int
	points   int64
}

// startArchiving appends the raw points of generation g to every archive
// that pr does not mark done, in the background.
func (e *Engine) startArchiving(ctx context.Context, g Generation, pr *genProgress) *archiving {
	ctx, cancel := context.WithCancel(ctx)
	a := &archiving{done: make(chan struct{}), cancel: cancel}
	go func() {
		defer close(a.done)
		for i, arch := range e.opts.Archives {
			if pr.archivesDone[i] {
				continue
			}
			segments, points, err := e.archiveLog(ctx, g.Gen, i, arch)
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

// wait waits for the archive step, first cancelling it when stop is set,
// adds what it did to rep (once) and returns its error.
func (a *archiving) wait(rep *FlushReport, stop bool) error {
	if stop {
		a.cancel()
	}
	<-a.done
	a.once.Do(func() {
		a.cancel()
		rep.Segments += a.segments
		rep.Points = max(rep.Points, a.points)
	})
	return a.err
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

// archiveLog appends the sealed log of generation gen to arch (the i-th
// archive) as segments of at most SegmentPoints points, encoding up to
// GOMAXPROCS segments at a time. Segment names and contents do not depend
// on the concurrency: part numbers follow the log's order.
func (e *Engine) archiveLog(ctx context.Context, gen uint64, i int, arch archive.Archive) (segments int, points int64, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex // guards first
		first error
	)
	slots := make(chan struct{}, runtime.GOMAXPROCS(0))
	read, owned := e.cache.SealedLog, false
	if o, ok := e.cache.(SealedLogOwner); ok {
		read, owned = o.SealedLogOwned, true
	}
	err = read(ctx, gen, e.opts.SegmentPoints, func(ps []tsstore.Point) error {
		id := archive.SegmentID{Source: e.archiveSource(gen), Generation: gen, Shard: segments, MinTime: ps[0].Timestamp, MaxTime: ps[0].Timestamp}
		for i := range ps {
			id.MinTime = min(id.MinTime, ps[i].Timestamp)
			id.MaxTime = max(id.MaxTime, ps[i].Timestamp)
		}
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
		if !owned {
			// The cache's slice is only valid during this call.
			ps = slices.Clone(ps)
		}
		segments++
		points += int64(len(ps))
		wg.Go(func() {
			defer func() { <-slots }()
			// Only the argument keeps the points: an archive may drop
			// them once it has made its own copy (sorted, encoded).
			points := ps
			ps = nil
			if _, err := arch.Append(ctx, id, points); err != nil {
				mu.Lock()
				if first == nil {
					first = fmt.Errorf("archive %d: append segment %s: %w", i, id.Name(), err)
					cancel()
				}
				mu.Unlock()
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
