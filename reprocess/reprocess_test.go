package reprocess_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/hourglass-io/hourglass/reprocess"
	"github.com/hourglass-io/hourglass/tsstore"
)

// TestFixRevenue is the whole workflow: ingest through writeback with a
// processor whose revenue ignores refunds, deploy the fix, reprocess the
// history before the cut-over while live writes go on after it, diff
// (exactly the revenue cells with refunds change), switch, and query the
// corrected figures, equal to memstore built from the raw points with the
// fixed processor; then roll back.
func TestFixRevenue(t *testing.T) {
	ctx := context.Background()
	h := newHistory()
	e := newEnv(t, t.TempDir())
	past := orders(1, 20_000, h.t0, h.cutover)
	e.write(t, past, 7)
	if _, err := e.eng.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	e.deploy(t, fixed)

	// The job runs while live writes after the cut-over go on.
	tail := orders(2, 6_000, h.cutover, h.end)
	var (
		wg        sync.WaitGroup
		lin       *reprocess.Lineage
		jobErr    error
		mu        sync.Mutex
		reports   []reprocess.Progress
		collector = reprocess.NewMetrics()
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		lin, jobErr = e.versions.Run(ctx, reprocess.Job{
			ID: "orders-2", Archive: e.arch, Processor: fixed, From: h.t0, Cutover: h.cutover,
			ChunkPoints: 3000, Metrics: collector, ProgressInterval: time.Nanosecond,
			Progress: func(p reprocess.Progress) { mu.Lock(); reports = append(reports, p); mu.Unlock() },
		})
	}()
	e.write(t, tail[:3000], 3)
	wg.Wait()
	if jobErr != nil {
		t.Fatal(jobErr)
	}
	e.write(t, tail[3000:], 0) // some of it stays in the cache

	// Lineage and progress.
	if lin.Processor != "orders/2" || lin.Points != int64(len(past)) || len(lin.Segments) == 0 || !lin.Complete() {
		t.Fatalf("lineage %+v", lin)
	}
	var segPoints int64
	for _, s := range lin.Segments {
		if len(s.Checksum) != 64 {
			t.Errorf("segment %s without checksum", s.Name)
		}
		segPoints += s.Points
	}
	if segPoints != int64(len(past)) {
		t.Errorf("lineage segments hold %d points, want %d", segPoints, len(past))
	}
	if !cmp.Equal(lin.Metrics, metricNames) {
		t.Errorf("lineage metrics %v", lin.Metrics)
	}
	last := reports[len(reports)-1]
	if !last.Done || last.Fraction != 1 || last.Points != int64(len(past)) || len(reports) < 5 {
		t.Errorf("%d reports, last %+v", len(reports), last)
	}
	for i := 1; i < len(reports); i++ {
		if reports[i].Points < reports[i-1].Points || reports[i].Fraction < reports[i-1].Fraction {
			t.Errorf("progress went back: %+v after %+v", reports[i], reports[i-1])
		}
	}
	if n := testutil.CollectAndCount(collector); n != 6 {
		t.Errorf("collector has %d metrics, want 6", n)
	}

	// The diff: exactly the revenue cells holding refunds change.
	d, err := e.versions.Compare(ctx, "orders-2", e.live, &reprocess.DiffOptions{Top: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{}
	for _, p := range past {
		if p.Labels.Get("kind") == "refund" {
			want[p.Labels.Get("merchant")+"@"+tsstore.TimeOf(tsstore.CellStart(p.Timestamp, time.Minute)).Format(time.RFC3339)] = true
		}
	}
	got := map[string]bool{}
	for _, c := range d.Largest {
		if c.Metric != "revenue" || c.New.Count != c.Old.Count+uint64(countRefunds(past, c.Labels["merchant"], c.Start)) || c.New.Sum >= c.Old.Sum {
			t.Errorf("unexpected change %+v", c)
		}
		got[c.Labels["merchant"]+"@"+tsstore.TimeOf(c.Start).Format(time.RFC3339)] = true
	}
	if !cmp.Equal(got, want) || d.BucketsChanged != len(want) {
		t.Errorf("changed buckets: %d, want %d (diff %s)", d.BucketsChanged, len(want), cmp.Diff(want, got))
	}
	if d.SeriesChanged != 6 || d.SeriesAdded != 0 || d.SeriesRemoved != 0 || d.Series != 18 {
		t.Errorf("diff summary: %s", d)
	}
	var kept reprocess.Diff
	if b, err := os.ReadFile(filepath.Join(e.versions.Dir("orders-2"), "diff.json")); err != nil {
		t.Error(err)
	} else if err := json.Unmarshal(b, &kept); err != nil || !cmp.Equal(&kept, d) {
		t.Errorf("diff.json: %v %s", err, cmp.Diff(d, &kept))
	}
	t.Log(d)

	// Before the switch the live figures are the buggy ones.
	raw := append(append([]tsstore.Point{}, past...), tail...)
	fixedOracle := oracle(t, raw, func(tsstore.Point) tsstore.Processor { return fixed })
	buggyOracle := oracle(t, raw, func(p tsstore.Point) tsstore.Processor {
		if p.Timestamp < h.cutover {
			return buggy
		}
		return fixed
	})
	check := func(o tsstore.Store) {
		t.Helper()
		for _, q := range queries(h) {
			wantR, err := o.Query(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			gotR, err := e.eng.Query(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(wantR, gotR, cmpResults...); diff != "" {
				t.Fatalf("query %s step %v from %d group %v: (-want +got)\n%s", q.Metric, q.Step, q.From, q.GroupBy, diff)
			}
		}
	}
	check(buggyOracle)
	if err := e.sw.Switch("orders-2"); err != nil {
		t.Fatal(err)
	}
	check(fixedOracle)
	if cur, _ := e.versions.Current(); cur != "orders-2" || e.sw.Current() != "orders-2" {
		t.Errorf("current %q", cur)
	}
	// Roll back and forth.
	if err := e.sw.Switch(""); err != nil {
		t.Fatal(err)
	}
	check(buggyOracle)
	if err := e.sw.Switch("orders-2"); err != nil {
		t.Fatal(err)
	}
	// Running the same job again returns the version; other parameters
	// conflict.
	if again, err := e.versions.Run(ctx, reprocess.Job{ID: "orders-2", Archive: e.arch, Processor: fixed, From: h.t0, Cutover: h.cutover}); err != nil || again.Created != lin.Created {
		t.Errorf("rerun: %v", err)
	}
	if _, err := e.versions.Run(ctx, reprocess.Job{ID: "orders-2", Archive: e.arch, Processor: buggy, From: h.t0, Cutover: h.cutover}); !errors.Is(err, tsstore.ErrConflict) {
		t.Errorf("rerun with another processor: %v, want a conflict", err)
	}
	// A restart picks the current version up from the catalog.
	if _, err := e.eng.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := e.sw.Close(); err != nil {
		t.Fatal(err)
	}
	if e.sw, err = reprocess.NewSwitchable(e.live, e.versions); err != nil {
		t.Fatal(err)
	}
	e.deploy(t, fixed)
	check(fixedOracle)
}

func countRefunds(ps []tsstore.Point, merchant string, start int64) int {
	n := 0
	for _, p := range ps {
		if p.Labels.Get("kind") == "refund" && p.Labels.Get("merchant") == merchant && tsstore.CellStart(p.Timestamp, time.Minute) == start {
			n++
		}
	}
	return n
}

// queries cover the whole range with buckets that straddle the cut-over
// and the start of the version's range.
func queries(h history) []tsstore.Query {
	var qs []tsstore.Query
	for _, m := range metricNames {
		m1, _ := tsstore.NewMatcher(tsstore.MatchEqual, "merchant", "m3")
		qs = append(qs,
			tsstore.Query{Metric: m, From: h.t0 - 3*60_000, To: h.end + 60_000, Step: 7 * time.Minute},
			tsstore.Query{Metric: m, From: h.t0, To: h.end, Step: time.Minute},
			tsstore.Query{Metric: m, From: h.t0 + 17_000, To: h.end - 1, Step: 4 * time.Hour, GroupBy: []string{}},
			tsstore.Query{Metric: m, From: h.cutover - 5*60_000, To: h.cutover + 5*60_000, Step: 3 * time.Minute, Matchers: []tsstore.Matcher{m1}},
		)
	}
	return qs
}

// TestFilteredVersion reprocesses one merchant only: the Switchable serves
// that merchant from the version and the others from the live store.
func TestFilteredVersion(t *testing.T) {
	ctx := context.Background()
	h := newHistory()
	e := newEnv(t, t.TempDir())
	past := orders(3, 8_000, h.t0, h.cutover)
	e.write(t, past, 5)
	if _, err := e.eng.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	m2, _ := tsstore.NewMatcher(tsstore.MatchRegexp, "merchant", "m[2]")
	if _, err := e.versions.Run(ctx, reprocess.Job{ID: "m2-fix", Archive: e.arch, Processor: fixed, From: h.t0, Cutover: h.cutover, Matchers: []tsstore.Matcher{m2}, ChunkPoints: 500}); err != nil {
		t.Fatal(err)
	}
	d, err := e.versions.Compare(ctx, "m2-fix", e.live, nil)
	if err != nil {
		t.Fatal(err)
	}
	if d.SeriesChanged != 1 || d.Series != 3 || d.Changes[0].Labels["merchant"] != "m2" {
		t.Errorf("filtered diff: %s", d)
	}
	if err := e.sw.Switch("m2-fix"); err != nil {
		t.Fatal(err)
	}
	want := oracle(t, past, func(p tsstore.Point) tsstore.Processor {
		if p.Labels.Get("merchant") == "m2" {
			return fixed
		}
		return buggy
	})
	for _, q := range queries(h) {
		for _, g := range [][]string{nil, {}, {"merchant"}} {
			q.GroupBy = g
			w, err := want.Query(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			got, err := e.eng.Query(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(w, got, cmpResults...); diff != "" {
				t.Fatalf("query %s step %v from %d group %v: (-want +got)\n%s", q.Metric, q.Step, q.From, q.GroupBy, diff)
			}
		}
	}
}
