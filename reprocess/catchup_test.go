package reprocess_test

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/hourglass-io/hourglass/reprocess"
	"github.com/hourglass-io/hourglass/tsstore"
)

// TestCatchUp switches to a version before its range has settled: late
// points of the range written afterwards go to the live store and the
// archive, stay out of reads (the version serves their time) until a
// catch-up adds them to the version, once.
func TestCatchUp(t *testing.T) {
	ctx := context.Background()
	h := newHistory()
	e := newEnv(t, t.TempDir())
	past := orders(8, 6000, h.t0, h.cutover)
	e.write(t, past, 4)
	if _, err := e.eng.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	e.deploy(t, fixed)
	if _, err := e.versions.Run(ctx, reprocess.Job{ID: "early", Archive: e.arch, Processor: fixed, From: h.t0, Cutover: h.cutover, ChunkPoints: 1000}); err != nil {
		t.Fatal(err)
	}
	if err := e.sw.Switch("early"); err != nil {
		t.Fatal(err)
	}
	tail := orders(9, 1000, h.cutover, h.end)
	late := orders(10, 700, h.t0, h.cutover)
	e.write(t, append(append([]tsstore.Point{}, tail...), late...), 1)
	if _, err := e.eng.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	check := func(raw ...[]tsstore.Point) {
		t.Helper()
		var all []tsstore.Point
		for _, r := range raw {
			all = append(all, r...)
		}
		o := oracle(t, all, func(tsstore.Point) tsstore.Processor { return fixed })
		for _, q := range queries(h) {
			w, err := o.Query(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			got, err := e.eng.Query(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(w, got, cmpResults...); d != "" {
				t.Fatalf("query %s step %v from %d: (-want +got)\n%s", q.Metric, q.Step, q.From, d)
			}
		}
	}
	check(past, tail) // the late points are not double-counted, nor yet seen
	n, err := e.sw.CatchUp(ctx, e.arch, fixed)
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(len(late)) {
		t.Errorf("caught up %d points, want %d", n, len(late))
	}
	check(past, tail, late)
	if n, err := e.sw.CatchUp(ctx, e.arch, fixed); err != nil || n != 0 {
		t.Errorf("second catch-up: %d points, %v", n, err)
	}
	check(past, tail, late)
	lin, err := e.versions.Lineage("early")
	if err != nil {
		t.Fatal(err)
	}
	if len(lin.CatchUps) != 1 || lin.CatchUps[0].Seq != 1 || lin.CatchUps[0].Completed.IsZero() || lin.Points != int64(len(past)+len(late)) {
		t.Errorf("lineage after catch-up: %+v", lin)
	}
	if _, err := e.sw.CatchUp(ctx, e.arch, buggy); err == nil {
		t.Error("catch-up with another processor succeeded")
	}
}
