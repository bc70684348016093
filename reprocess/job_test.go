package reprocess_test

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/hourglass-io/hourglass/reprocess"
	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/tsstore/archive"
)

// TestRateAndProgress runs a job limited to 20000 points/s: the pacing
// keeps every reported rate at or below the limit (it sleeps until the
// points done fit the limit before it reports), and progress only grows.
func TestRateAndProgress(t *testing.T) {
	ctx := context.Background()
	h := newHistory()
	e := newEnv(t, t.TempDir())
	e.write(t, orders(5, 6000, h.t0, h.cutover), 4)
	if _, err := e.eng.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	var reports []reprocess.Progress
	_, err := e.versions.Run(ctx, reprocess.Job{ID: "slow", Archive: e.arch, Processor: fixed, From: h.t0, Cutover: h.cutover,
		Rate: 20000, BatchPoints: 250, ChunkPoints: 1000, ProgressInterval: 1,
		Progress: func(p reprocess.Progress) { reports = append(reports, p) }})
	if err != nil {
		t.Fatal(err)
	}
	if len(reports) < 10 {
		t.Fatalf("%d progress reports", len(reports))
	}
	for i, p := range reports {
		if p.Rate > 20000 {
			t.Errorf("report %d: rate %.0f points/s above the limit", i, p.Rate)
		}
		if p.Total != 6000 || p.From != h.t0 || p.Cutover != h.cutover {
			t.Errorf("report %d: %+v", i, p)
		}
		if i > 0 && (p.Points < reports[i-1].Points || p.Position < reports[i-1].Position) {
			t.Errorf("report %d went back: %+v after %+v", i, p, reports[i-1])
		}
		if p.Position > h.t0 && p.Position < h.cutover && p.ETA <= 0 {
			t.Errorf("report %d: no ETA: %+v", i, p)
		}
	}
	if last := reports[len(reports)-1]; !last.Done || last.Points != 6000 || last.Fraction != 1 {
		t.Errorf("last report %+v", last)
	}
}

// TestJobErrors covers the refusals (a processor that moves points out of
// their cell, a range not aligned to cells, a bad id, switching to an
// incomplete version) and interrupted jobs: resumed after a cancel, and
// resumed after the archive gained a segment in the range.
func TestJobErrors(t *testing.T) {
	ctx := context.Background()
	h := newHistory()
	e := newEnv(t, t.TempDir())
	e.write(t, orders(6, 3000, h.t0, h.cutover), 3)
	if _, err := e.eng.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	shift := tsstore.ProcessorFunc{V: "shift/1", F: func(dst []tsstore.Point, p tsstore.Point) ([]tsstore.Point, error) {
		p.Timestamp += 60_000
		return append(dst, p), nil
	}}
	if _, err := e.versions.Run(ctx, reprocess.Job{ID: "shift", Archive: e.arch, Processor: shift, From: h.t0, Cutover: h.cutover}); !errors.Is(err, tsstore.ErrInvalid) {
		t.Errorf("processor moving points: %v, want ErrInvalid", err)
	}
	if _, err := e.versions.Run(ctx, reprocess.Job{ID: "odd", Archive: e.arch, Processor: fixed, From: h.t0 + 1, Cutover: h.cutover}); !errors.Is(err, tsstore.ErrInvalid) {
		t.Errorf("unaligned range: %v, want ErrInvalid", err)
	}
	if _, err := e.versions.Run(ctx, reprocess.Job{ID: "../x", Archive: e.arch, Processor: fixed, From: h.t0, Cutover: h.cutover}); !errors.Is(err, tsstore.ErrInvalid) {
		t.Errorf("bad id: %v, want ErrInvalid", err)
	}
	// Interrupt jobs (cancel from the progress callback, mid-chunk). One
	// resumes to the same cells as memstore built from the raw points;
	// for the other a late point is archived inside its range first.
	interrupt := func(id string) {
		cctx, cancel := context.WithCancel(ctx)
		defer cancel()
		_, err := e.versions.Run(cctx, reprocess.Job{ID: id, Archive: e.arch, Processor: fixed, From: h.t0, Cutover: h.cutover,
			ChunkPoints: 500, BatchPoints: 100, ProgressInterval: 1, Progress: func(p reprocess.Progress) {
				if p.Points >= 1250 {
					cancel()
				}
			}})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled job: %v", err)
		}
	}
	interrupt("cancelled")
	lin, err := e.versions.Run(ctx, reprocess.Job{ID: "cancelled", Archive: e.arch, Processor: fixed, From: h.t0, Cutover: h.cutover})
	if err != nil {
		t.Fatal(err)
	}
	if lin.Resumes != 1 || lin.Points != 3000 {
		t.Errorf("resumed lineage %+v", lin)
	}
	st, err := e.versions.OpenStore("cancelled")
	if err != nil {
		t.Fatal(err)
	}
	got := allCells(t, st, h.t0, h.cutover)
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	want := allCells(t, oracle(t, orders(6, 3000, h.t0, h.cutover), func(tsstore.Point) tsstore.Processor { return fixed }), h.t0, h.cutover)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("resumed after cancel (-want +got):\n%s", diff)
	}
	interrupt("moved")
	late := orders(7, 1, h.t0, h.t0+60_000)
	if _, err := e.arch.Append(ctx, archive.SegmentID{Source: "late", Generation: 1, MinTime: late[0].Timestamp, MaxTime: late[0].Timestamp}, late); err != nil {
		t.Fatal(err)
	}
	// The resumed job reads the segments the job started with; the late
	// one is for a catch-up.
	lin, err = e.versions.Run(ctx, reprocess.Job{ID: "moved", Archive: e.arch, Processor: fixed, From: h.t0, Cutover: h.cutover})
	if err != nil || lin.Points != 3000 {
		t.Fatalf("resume over a grown archive: %v, %+v", err, lin)
	}
	if n, err := e.versions.CatchUp(ctx, "moved", e.arch, fixed); err != nil || n != 1 {
		t.Errorf("catch-up of the late point: %d, %v", n, err)
	}
	interrupt("incomplete")
	if err := e.sw.Switch("incomplete"); !errors.Is(err, tsstore.ErrInvalid) {
		t.Errorf("switch to an incomplete version: %v, want ErrInvalid", err)
	}
}
