package reprocess_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/hourglass-io/hourglass/reprocess"
	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/tsstore/memstore"
)

// TestRebuildIdentity: Rebuild gives every cell the identity it is asked
// for (Writer and Seq), whatever the writer id and generation of its own
// engine, so the cells equal those of the flush it rebuilds, and a job's
// version holds only VersionWriter's cells.
func TestRebuildIdentity(t *testing.T) {
	ctx := context.Background()
	h := newHistory()
	e := newEnv(t, t.TempDir())
	raw := orders(11, 2000, h.t0, h.cutover)
	e.write(t, raw, 0)
	if _, err := e.eng.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	infos, err := e.arch.Segments(ctx, h.t0, h.cutover)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, in := range infos {
		names = append(names, in.Name)
	}
	st := memstore.New(nil)
	const writer, seq = "a1b2c3d4/3", 17
	res, err := reprocess.Rebuild(ctx, e.arch, names, h.t0, h.cutover, nil, buggy, writer, seq, st, filepath.Join(t.TempDir(), "cache"))
	if err != nil {
		t.Fatal(err)
	}
	cells := allCells(t, st, h.t0, h.cutover)
	if res.Cells == 0 || int64(len(cells)) != res.Cells {
		t.Fatalf("Rebuild reports %d cells, the store holds %d", res.Cells, len(cells))
	}
	for _, c := range cells {
		if c.Writer != writer || c.Seq != seq {
			t.Fatalf("rebuilt cell %s%s@%d has writer %q seq %d, want %q and %d", c.Metric, c.Labels, c.Start, c.Writer, c.Seq, writer, seq)
		}
	}
	o := oracle(t, raw, func(tsstore.Point) tsstore.Processor { return buggy })
	for _, q := range queries(h) {
		want, _ := o.Query(ctx, q)
		got, err := st.Query(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(want, got, cmpResults...); d != "" {
			t.Errorf("query %s step %v: (-want +got)\n%s", q.Metric, q.Step, d)
		}
	}
	if _, err := reprocess.Rebuild(ctx, e.arch, names, h.t0, h.cutover, nil, buggy, "not a writer", 0, st, filepath.Join(t.TempDir(), "cache")); !errors.Is(err, tsstore.ErrInvalid) {
		t.Errorf("Rebuild with writer %q: %v, want ErrInvalid", "not a writer", err)
	}

	if _, err := e.versions.Run(ctx, reprocess.Job{ID: "v", Archive: e.arch, Processor: fixed, From: h.t0, Cutover: h.cutover, ChunkPoints: 500}); err != nil {
		t.Fatal(err)
	}
	vs, err := e.versions.OpenStore("v")
	if err != nil {
		t.Fatal(err)
	}
	defer vs.Close()
	for _, c := range allCells(t, vs, h.t0, h.cutover) {
		if c.Writer != reprocess.VersionWriter || c.Seq != 0 {
			t.Fatalf("version cell %s%s@%d has writer %q seq %d, want %q and 0", c.Metric, c.Labels, c.Start, c.Writer, c.Seq, reprocess.VersionWriter)
		}
	}
}
