package reprocess

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"time"

	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/tsstore/archive"
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
// writes the cells into the version as new partials, with Writer
// VersionWriter and Seq = the pass number (1, 2, ...), so they add to what
// is there; the lineage lists the
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
// flushes them in one generation: each cell gets one partial, Writer
// VersionWriter and Seq pass.Seq.
func (v *Versions) catchUpPass(ctx context.Context, id string, a archive.Archive, p tsstore.Processor, st tsstore.Store,
	lin *Lineage, filter []tsstore.Matcher, pass *CatchUpPass) (int64, error) {
	names := make([]string, len(pass.Segments))
	for i, s := range pass.Segments {
		names[i] = s.Name
	}
	res, err := Rebuild(ctx, a, names, lin.From, lin.Cutover, filter, p, VersionWriter, pass.Seq, st, filepath.Join(v.Dir(id), "cache-catchup"))
	if err != nil {
		return 0, err
	}
	lin.Cells += res.Cells
	lin.Metrics = append(lin.Metrics, res.Metrics...)
	return res.Points, nil
}
