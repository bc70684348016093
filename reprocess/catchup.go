package reprocess

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/tsstore/archive"
	"github.com/hourglass-io/hourglass/writeback"
	"github.com/hourglass-io/hourglass/writeback/localcache"
)

// CatchUpPass records one catch-up of a version: the segments it read and
// the Seq its cells got.
type CatchUpPass struct {
	Seq       uint32       `json:"seq"`
	Segments  []SegmentRef `json:"segments"`
	Points    int64        `json:"points"`
	Completed time.Time    `json:"completed,omitzero"`
}

// CatchUp adds to the version id the points of its range that reached the
// archive after its job listed the segments (late data), so that a version
// can be made, and switched to, before its range has settled. It reads the
// segments overlapping [From, Cutover) that the lineage does not list, runs
// their points of the range (and filter) through an engine with p, and
// writes the cells into the version as new partials, with Seq = the pass
// number (1, 2, ...), so they add to what is there; the lineage lists the
// pass and its segments. With no new segment it does nothing. An
// interrupted pass is redone, from the same segments with the same Seq, by
// the next call. It returns the points added.
//
// The version must not be open elsewhere (use Switchable.CatchUp for the
// current version of a Switchable), and p must have the version's
// processor version.
func (v *Versions) CatchUp(ctx context.Context, id string, a archive.Archive, p tsstore.Processor) (int64, error) {
	st, err := v.OpenStore(id)
	if err != nil {
		return 0, err
	}
	n, err := v.catchUp(ctx, id, a, p, st)
	if cerr := st.Close(); err == nil && cerr != nil {
		err = cerr
	}
	return n, err
}

// CatchUp is Versions.CatchUp for the Switchable's current version, through
// the store it has open.
func (s *Switchable) CatchUp(ctx context.Context, a archive.Archive, p tsstore.Processor) (int64, error) {
	r := s.cur.Load()
	if r == nil {
		return 0, tsstore.Errorf(tsstore.ErrInvalid, "reprocess: catch up: no version is current")
	}
	return s.versions.catchUp(ctx, r.id, a, p, r.store)
}

func (v *Versions) catchUp(ctx context.Context, id string, a archive.Archive, p tsstore.Processor, st tsstore.Store) (int64, error) {
	v.catchMu.Lock()
	defer v.catchMu.Unlock()
	lin, err := v.Lineage(id)
	if err != nil {
		return 0, err
	}
	if !lin.Complete() {
		return 0, tsstore.Errorf(tsstore.ErrInvalid, "reprocess: catch up: version %s is not complete", id)
	}
	if p.Version() != lin.Processor {
		return 0, tsstore.Errorf(tsstore.ErrInvalid, "reprocess: catch up: version %s was made by processor %s, not %s", id, lin.Processor, p.Version())
	}
	filter, err := lin.matchers()
	if err != nil {
		return 0, err
	}
	n := len(lin.CatchUps)
	var pass *CatchUpPass
	if n > 0 && lin.CatchUps[n-1].Completed.IsZero() {
		pass = &lin.CatchUps[n-1] // interrupted: redo it as it was
	} else {
		segs, err := listSegments(ctx, a, lin.From, lin.Cutover)
		if err != nil {
			return 0, err
		}
		known := map[string]bool{}
		for _, s := range lin.Segments {
			known[s.Name] = true
		}
		for _, c := range lin.CatchUps {
			for _, s := range c.Segments {
				known[s.Name] = true
			}
		}
		var fresh []SegmentRef
		for _, s := range segs {
			if !known[s.Name] {
				fresh = append(fresh, s)
			}
		}
		if len(fresh) == 0 {
			return 0, nil
		}
		if int64(n+1) >= lin.CellWidth {
			return 0, tsstore.Errorf(tsstore.ErrInvalid, "reprocess: catch up: version %s has had %d passes, as many as its cells have Seq values", id, n)
		}
		lin.CatchUps = append(lin.CatchUps, CatchUpPass{Seq: uint32(n + 1), Segments: fresh})
		pass = &lin.CatchUps[n]
		if err := writeJSONAtomic(filepath.Join(v.Dir(id), lineageFile), lin); err != nil {
			return 0, err
		}
	}
	points, err := v.catchUpPass(ctx, id, a, p, st, lin, filter, pass)
	if err != nil {
		return 0, fmt.Errorf("reprocess: catch up %s pass %d: %w", id, pass.Seq, err)
	}
	pass.Points = points
	pass.Completed = time.Now().UTC()
	lin.Points += points
	lin.Metrics = slices.Compact(slices.Sorted(slices.Values(lin.Metrics)))
	if err := writeJSONAtomic(filepath.Join(v.Dir(id), lineageFile), lin); err != nil {
		return 0, err
	}
	return points, nil
}

// catchUpPass runs the points of one pass through an engine of its own and
// flushes them in one generation: each cell gets one partial, Seq pass.Seq.
func (v *Versions) catchUpPass(ctx context.Context, id string, a archive.Archive, p tsstore.Processor, st tsstore.Store,
	lin *Lineage, filter []tsstore.Matcher, pass *CatchUpPass) (points int64, err error) {
	cdir := filepath.Join(v.Dir(id), "cache-catchup")
	if err := os.RemoveAll(cdir); err != nil {
		return 0, tsstore.Errorf(tsstore.ErrUnavailable, "discard cache: %w", err)
	}
	cache, err := localcache.Open(cdir, &localcache.Options{Fsync: localcache.FsyncNever})
	if err != nil {
		return 0, err
	}
	defer func() {
		if cerr := cache.Close(); err == nil && cerr != nil {
			err = cerr
		}
		if err == nil {
			err = os.RemoveAll(cdir)
		}
	}()
	ss := &seqStore{Store: st, seq: pass.Seq}
	proc := newCheckedProcessor(p, time.Duration(lin.CellWidth)*time.Millisecond, lin.Metrics)
	const century = 100 * 365 * 24 * time.Hour
	eng, err := writeback.New(cache, ss, &writeback.Options{
		Processor: proc, Source: "reprocess", FlushInterval: -1, FlushBudget: century,
		MaxCacheBytes: math.MaxInt64, FlushAtBytes: math.MaxInt64, MaxLate: 2 * century, MaxFuture: 2 * century, SealSpacing: -1,
	})
	if err != nil {
		return 0, err
	}
	defer func() {
		if err != nil {
			ss.refuse.Store(true)
			_ = eng.Close()
			return
		}
		err = eng.Close()
	}()
	var batch []tsstore.Point
	for _, s := range pass.Segments {
		err := a.Read(ctx, s.Name, func(pt tsstore.Point) error {
			if pt.Timestamp < lin.From || pt.Timestamp >= lin.Cutover || !tsstore.MatchLabels(filter, pt.Labels) {
				return nil
			}
			batch = append(batch, pt)
			if len(batch) >= DefaultBatchPoints {
				points += int64(len(batch))
				err := eng.Write(ctx, batch)
				batch = batch[:0]
				return err
			}
			return nil
		})
		if err != nil {
			return 0, err
		}
	}
	if err := eng.Write(ctx, batch); err != nil {
		return 0, err
	}
	points += int64(len(batch))
	for {
		rep, err := eng.Flush(ctx)
		if err != nil {
			return 0, err
		}
		if !rep.Overrun {
			break
		}
	}
	lin.Cells += ss.written.Load()
	lin.Metrics = append(lin.Metrics, proc.metricNames()...)
	return points, nil
}
