// Package storetest is the conformance suite every tsstore.Store backend
// runs, in the manner of gocloud.dev's drivertest:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) tsstore.Store { return openMyStore(t) })
//	}
//
// The suite checks exact aggregates over partials, idempotent and conflicting
// rewrites, partials of two writers kept apart (and the legacy writer "")
// and summed, matchers and group-by, bucket alignment and edges, empty and
// huge ranges, invalid input rejected with nothing stored, concurrent
// writers and readers (run it under -race), context cancellation, use after
// Close, and a property test (pgregory.net/rapid) comparing the store with
// memstore on random workloads.
//
// Values written by the suite are integers so that sums are exact in any
// order (see tsstore's package comment).
package storetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"pgregory.net/rapid"

	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/tsstore/memstore"
)

// Base is the time (ms) around which the suite writes: 2026-01-01T00:00Z.
var Base = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()

// NewStore opens an empty store for one test. It should register its own
// cleanup with t.Cleanup; the suite also calls Close, which must therefore
// be safe to call twice.
type NewStore func(t *testing.T) tsstore.Store

// Run runs the conformance suite against the stores made by newStore.
func Run(t *testing.T, newStore NewStore) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(*testing.T, NewStore)
	}{
		{"ExactPartials", testExactPartials},
		{"IdempotentRewrite", testIdempotentRewrite},
		{"ConflictingRewrite", testConflictingRewrite},
		{"TwoWriters", testTwoWriters},
		{"Matchers", testMatchers},
		{"GroupBy", testGroupBy},
		{"BucketEdges", testBucketEdges},
		{"EmptyAndHugeRanges", testEmptyAndHugeRanges},
		{"AwkwardLabelValues", testAwkwardLabelValues},
		{"InvalidWrite", testInvalidWrite},
		{"InvalidQuery", testInvalidQuery},
		{"Concurrent", testConcurrent},
		{"Cancelled", testCancelled},
		{"UseAfterClose", testUseAfterClose},
		{"MatchesMemstore", testMatchesMemstore},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newStore) })
	}
}

// cell builds a cell of the store's width: minute is the cell index from
// Base, vals are added to its Agg.
func cell(s tsstore.Store, metric string, ls tsstore.Labels, idx int64, seq uint32, vals ...float64) tsstore.Cell {
	c := tsstore.Cell{Metric: metric, Labels: ls, Start: Base + idx*s.CellWidth().Milliseconds(), Seq: seq}
	for _, v := range vals {
		c.Add(v)
	}
	return c
}

// fataler is what the helpers need of a *testing.T or a *rapid.T.
type fataler interface{ Fatal(args ...any) }

func labels(t fataler, kv ...string) tsstore.Labels {
	ls, err := tsstore.NewLabels(kv...)
	if err != nil {
		t.Fatal(err)
	}
	return ls
}

func mustWrite(t testing.TB, s tsstore.Store, cells ...tsstore.Cell) {
	t.Helper()
	if err := s.Write(context.Background(), cells); err != nil {
		t.Fatalf("Write: %v", err)
	}
}

func mustQuery(t testing.TB, s tsstore.Store, q tsstore.Query) *tsstore.Result {
	t.Helper()
	r, err := s.Query(context.Background(), q)
	if err != nil {
		t.Fatalf("Query(%+v): %v", q, err)
	}
	return r
}

// Diff returns a description of the difference between two results, or ""
// when they are equal (empty and nil slices are equal).
func Diff(want, got *tsstore.Result) string {
	return cmp.Diff(want, got, cmpopts.EquateEmpty())
}

// CellOrder is a cmp option under which slices of cells are equal when
// they hold the same cells in any order (sorted by metric, labels, start,
// writer and seq), as Store.Cells returns them.
var CellOrder = cmpopts.SortSlices(func(a, b tsstore.Cell) bool {
	if a.Metric != b.Metric {
		return a.Metric < b.Metric
	}
	if c := a.Labels.Compare(b.Labels); c != 0 {
		return c < 0
	}
	if a.Start != b.Start {
		return a.Start < b.Start
	}
	if a.Writer != b.Writer {
		return a.Writer < b.Writer
	}
	return a.Seq < b.Seq
})

func ser(ls tsstore.Labels, bs ...tsstore.Bucket) tsstore.Series {
	return tsstore.Series{Labels: ls, Buckets: bs}
}

func bucket(start int64, a tsstore.Agg) tsstore.Bucket { return tsstore.Bucket{Start: start, Agg: a} }

func agg(count uint64, sum, min, max float64) tsstore.Agg {
	return tsstore.Agg{Count: count, Sum: sum, Min: min, Max: max}
}

func open(t *testing.T, newStore NewStore) tsstore.Store {
	s := newStore(t)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func testExactPartials(t *testing.T, newStore NewStore) {
	s := open(t, newStore)
	ls := labels(t, "merchant", "m1")
	w := s.CellWidth().Milliseconds()
	mustWrite(t, s,
		cell(s, "revenue", ls, 0, 0, 10, 20),
		cell(s, "revenue", ls, 0, 1, 5),
		cell(s, "revenue", ls, 0, 2, 100, -3),
		cell(s, "revenue", ls, 1, 0, 7),
	)
	// One bucket per cell.
	got := mustQuery(t, s, tsstore.Query{Metric: "revenue", From: Base, To: Base + 2*w, Step: s.CellWidth()})
	want := &tsstore.Result{Series: []tsstore.Series{ser(ls,
		bucket(Base, agg(5, 132, -3, 100)),
		bucket(Base+w, agg(1, 7, 7, 7)),
	)}}
	if d := Diff(want, got); d != "" {
		t.Errorf("partials of one cell not merged exactly (-want +got):\n%s", d)
	}
	// Both cells in one bucket.
	got = mustQuery(t, s, tsstore.Query{Metric: "revenue", From: Base, To: Base + 2*w, Step: 2 * s.CellWidth()})
	want = &tsstore.Result{Series: []tsstore.Series{ser(ls, bucket(Base, agg(6, 139, -3, 100)))}}
	if d := Diff(want, got); d != "" {
		t.Errorf("two cells in one bucket (-want +got):\n%s", d)
	}
	// Raw cells keep every partial.
	cells, err := s.Cells(context.Background(), tsstore.Selector{Metric: "revenue", From: Base, To: Base + w})
	if err != nil {
		t.Fatal(err)
	}
	if len(cells) != 3 {
		t.Fatalf("Cells returned %d cells, want the 3 partials: %+v", len(cells), cells)
	}
	seen := map[uint32]tsstore.Agg{}
	for _, c := range cells {
		if c.Metric != "revenue" || !c.Labels.Equal(ls) || c.Start != Base {
			t.Errorf("Cells returned %+v, not of the series written", c)
		}
		seen[c.Seq] = c.Agg
	}
	wantSeen := map[uint32]tsstore.Agg{0: agg(2, 30, 10, 20), 1: agg(1, 5, 5, 5), 2: agg(2, 97, -3, 100)}
	if d := cmp.Diff(wantSeen, seen); d != "" {
		t.Errorf("Cells partials (-want +got):\n%s", d)
	}
}

func testIdempotentRewrite(t *testing.T, newStore NewStore) {
	s := open(t, newStore)
	ls := labels(t, "merchant", "m1", "page", "/")
	w := s.CellWidth().Milliseconds()
	batch := []tsstore.Cell{cell(s, "views", ls, 0, 0, 1, 1, 1), cell(s, "views", ls, 3, 0, 1), cell(s, "views", ls, 3, 1, 2)}
	for i := 0; i < 3; i++ {
		mustWrite(t, s, batch...)
	}
	// A retry of part of the batch too.
	mustWrite(t, s, batch[1])
	got := mustQuery(t, s, tsstore.Query{Metric: "views", From: Base, To: Base + 10*w, Step: 10 * s.CellWidth()})
	want := &tsstore.Result{Series: []tsstore.Series{ser(ls, bucket(Base, agg(5, 6, 1, 2)))}}
	if d := Diff(want, got); d != "" {
		t.Errorf("rewriting the same cells changed the result (-want +got):\n%s", d)
	}
}

func testConflictingRewrite(t *testing.T, newStore NewStore) {
	s := open(t, newStore)
	ls := labels(t, "merchant", "m1")
	w := s.CellWidth().Milliseconds()
	mustWrite(t, s, cell(s, "orders", ls, 0, 0, 1, 2))
	err := s.Write(context.Background(), []tsstore.Cell{cell(s, "orders", ls, 0, 0, 1, 2, 3)})
	if !errors.Is(err, tsstore.ErrConflict) {
		t.Fatalf("rewrite with another Agg: got %v, want ErrConflict", err)
	}
	got := mustQuery(t, s, tsstore.Query{Metric: "orders", From: Base, To: Base + w, Step: s.CellWidth()})
	want := &tsstore.Result{Series: []tsstore.Series{ser(ls, bucket(Base, agg(2, 3, 1, 2)))}}
	if d := Diff(want, got); d != "" {
		t.Errorf("a conflicting write changed the stored cell (-want +got):\n%s", d)
	}
	// The next partial is not a conflict.
	mustWrite(t, s, cell(s, "orders", ls, 0, 1, 3))
	got = mustQuery(t, s, tsstore.Query{Metric: "orders", From: Base, To: Base + w, Step: s.CellWidth()})
	want = &tsstore.Result{Series: []tsstore.Series{ser(ls, bucket(Base, agg(3, 6, 1, 3)))}}
	if d := Diff(want, got); d != "" {
		t.Errorf("next partial (-want +got):\n%s", d)
	}
}

func matcher(t fataler, mt tsstore.MatchType, n, v string) tsstore.Matcher {
	m, err := tsstore.NewMatcher(mt, n, v)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// testTwoWriters: the same (series, start, seq) from two writers are two
// partials, both kept and summed; a writer's retry is a no-op; a writer's
// different Agg is a conflict that leaves the other writer's partial alone.
func testTwoWriters(t *testing.T, newStore NewStore) {
	s := open(t, newStore)
	ls := labels(t, "currency", "EUR", "merchant", "demo")
	w := s.CellWidth().Milliseconds()
	a := cell(s, "revenue", ls, 0, 1, 10)
	a.Writer = "a1b2c3d4"
	b := cell(s, "revenue", ls, 0, 1, 7)
	b.Writer = "e5f6a7b8/1"
	legacy := cell(s, "revenue", ls, 0, 1, 100)
	mustWrite(t, s, a)
	mustWrite(t, s, b, legacy)
	mustWrite(t, s, a, b) // retries: no-ops
	got := mustQuery(t, s, tsstore.Query{Metric: "revenue", From: Base, To: Base + w, Step: s.CellWidth()})
	want := &tsstore.Result{Series: []tsstore.Series{ser(ls, bucket(Base, agg(3, 117, 7, 100)))}}
	if d := Diff(want, got); d != "" {
		t.Errorf("partials of two writers and the legacy writer not summed (-want +got):\n%s", d)
	}
	grouped := mustQuery(t, s, tsstore.Query{Metric: "revenue", From: Base, To: Base + w, Step: s.CellWidth(), GroupBy: []string{"currency"}})
	want = &tsstore.Result{Series: []tsstore.Series{ser(labels(t, "currency", "EUR"), bucket(Base, agg(3, 117, 7, 100)))}}
	if d := Diff(want, grouped); d != "" {
		t.Errorf("grouped by currency, the writer must not show (-want +got):\n%s", d)
	}
	// The writer is no label: a matcher on tsstore.WriterLabel sees "".
	for v, n := range map[string]int{"": 1, a.Writer: 0} {
		q := tsstore.Query{Metric: "revenue", Matchers: []tsstore.Matcher{matcher(t, tsstore.MatchEqual, tsstore.WriterLabel, v)}, From: Base, To: Base + w, Step: s.CellWidth()}
		if r := mustQuery(t, s, q); len(r.Series) != n {
			t.Errorf("matcher %s: %d series, want %d (the writer is not a label)", q.Matchers[0], len(r.Series), n)
		}
	}
	conflicting := b
	conflicting.Add(1)
	if err := s.Write(context.Background(), []tsstore.Cell{conflicting}); !errors.Is(err, tsstore.ErrConflict) {
		t.Fatalf("writer %q rewriting its cell with another Agg: got %v, want ErrConflict", b.Writer, err)
	}
	cells, err := s.Cells(context.Background(), tsstore.Selector{Metric: "revenue", From: Base, To: Base + w})
	if err != nil {
		t.Fatal(err)
	}
	byWriter := map[string]tsstore.Agg{}
	for _, c := range cells {
		if c.Seq != 1 || c.Start != Base || !c.Labels.Equal(ls) {
			t.Errorf("Cells returned %+v, not a cell written", c)
		}
		if _, dup := byWriter[c.Writer]; dup {
			t.Errorf("Cells returned writer %q twice", c.Writer)
		}
		byWriter[c.Writer] = c.Agg
	}
	wantCells := map[string]tsstore.Agg{"a1b2c3d4": agg(1, 10, 10, 10), "e5f6a7b8/1": agg(1, 7, 7, 7), "": agg(1, 100, 100, 100)}
	if d := cmp.Diff(wantCells, byWriter); d != "" {
		t.Errorf("Cells by writer (-want +got):\n%s", d)
	}
	bad := a
	bad.Writer = "has space"
	if err := s.Write(context.Background(), []tsstore.Cell{bad}); !errors.Is(err, tsstore.ErrInvalid) {
		t.Errorf("writer %q: got %v, want ErrInvalid", bad.Writer, err)
	}
}

func testMatchers(t *testing.T, newStore NewStore) {
	s := open(t, newStore)
	w := s.CellWidth().Milliseconds()
	a := labels(t, "merchant", "m1", "country", "fr")
	b := labels(t, "merchant", "m2", "country", "de")
	c := labels(t, "merchant", "m10")
	mustWrite(t, s, cell(s, "orders", a, 0, 0, 1), cell(s, "orders", b, 0, 0, 2), cell(s, "orders", c, 0, 0, 3),
		cell(s, "other", a, 0, 0, 100))
	q := func(ms ...tsstore.Matcher) []tsstore.Labels {
		r := mustQuery(t, s, tsstore.Query{Metric: "orders", Matchers: ms, From: Base, To: Base + w, Step: s.CellWidth()})
		var out []tsstore.Labels
		for _, se := range r.Series {
			out = append(out, se.Labels)
		}
		return out
	}
	for _, tc := range []struct {
		name string
		ms   []tsstore.Matcher
		want []tsstore.Labels
	}{
		{"none", nil, []tsstore.Labels{b, a, c}},
		{"equal", []tsstore.Matcher{matcher(t, tsstore.MatchEqual, "merchant", "m1")}, []tsstore.Labels{a}},
		{"not equal", []tsstore.Matcher{matcher(t, tsstore.MatchNotEqual, "merchant", "m1")}, []tsstore.Labels{b, c}},
		{"regexp anchored", []tsstore.Matcher{matcher(t, tsstore.MatchRegexp, "merchant", "m1")}, []tsstore.Labels{a}},
		{"regexp", []tsstore.Matcher{matcher(t, tsstore.MatchRegexp, "merchant", "m1.*")}, []tsstore.Labels{a, c}},
		{"not regexp", []tsstore.Matcher{matcher(t, tsstore.MatchNotRegexp, "merchant", "m1.*")}, []tsstore.Labels{b}},
		{"missing label equals empty", []tsstore.Matcher{matcher(t, tsstore.MatchEqual, "country", "")}, []tsstore.Labels{c}},
		{"missing label not equal", []tsstore.Matcher{matcher(t, tsstore.MatchNotEqual, "country", "fr")}, []tsstore.Labels{b, c}},
		{"two matchers", []tsstore.Matcher{matcher(t, tsstore.MatchRegexp, "merchant", "m.*"), matcher(t, tsstore.MatchEqual, "country", "de")}, []tsstore.Labels{b}},
		{"no match", []tsstore.Matcher{matcher(t, tsstore.MatchEqual, "merchant", "nobody")}, nil},
	} {
		if d := cmp.Diff(tc.want, q(tc.ms...), cmpopts.EquateEmpty()); d != "" {
			t.Errorf("%s: series (-want +got):\n%s", tc.name, d)
		}
	}
}

func testGroupBy(t *testing.T, newStore NewStore) {
	s := open(t, newStore)
	w := s.CellWidth().Milliseconds()
	mustWrite(t, s,
		cell(s, "revenue", labels(t, "merchant", "m1", "currency", "eur"), 0, 0, 10),
		cell(s, "revenue", labels(t, "merchant", "m1", "currency", "usd"), 0, 0, 20),
		cell(s, "revenue", labels(t, "merchant", "m1", "currency", "usd"), 1, 0, 1),
		cell(s, "revenue", labels(t, "merchant", "m2", "currency", "eur"), 0, 0, 5),
		cell(s, "revenue", labels(t, "merchant", "m3"), 0, 0, 2),
	)
	base := tsstore.Query{Metric: "revenue", From: Base, To: Base + 2*w, Step: 2 * s.CellWidth()}
	q := base
	q.GroupBy = []string{"merchant"}
	want := &tsstore.Result{Series: []tsstore.Series{
		ser(labels(t, "merchant", "m1"), bucket(Base, agg(3, 31, 1, 20))),
		ser(labels(t, "merchant", "m2"), bucket(Base, agg(1, 5, 5, 5))),
		ser(labels(t, "merchant", "m3"), bucket(Base, agg(1, 2, 2, 2))),
	}}
	if d := Diff(want, mustQuery(t, s, q)); d != "" {
		t.Errorf("group by merchant (-want +got):\n%s", d)
	}
	q.GroupBy = []string{"currency"}
	want = &tsstore.Result{Series: []tsstore.Series{
		ser(nil, bucket(Base, agg(1, 2, 2, 2))),
		ser(labels(t, "currency", "eur"), bucket(Base, agg(2, 15, 5, 10))),
		ser(labels(t, "currency", "usd"), bucket(Base, agg(2, 21, 1, 20))),
	}}
	if d := Diff(want, mustQuery(t, s, q)); d != "" {
		t.Errorf("group by currency, one series without it (-want +got):\n%s", d)
	}
	q.GroupBy = []string{}
	q.Step = s.CellWidth()
	want = &tsstore.Result{Series: []tsstore.Series{
		ser(nil, bucket(Base, agg(4, 37, 2, 20)), bucket(Base+w, agg(1, 1, 1, 1))),
	}}
	if d := Diff(want, mustQuery(t, s, q)); d != "" {
		t.Errorf("group by nothing merges all (-want +got):\n%s", d)
	}
	q.GroupBy = []string{"merchant"}
	q.Matchers = []tsstore.Matcher{matcher(t, tsstore.MatchEqual, "currency", "usd")}
	want = &tsstore.Result{Series: []tsstore.Series{
		ser(labels(t, "merchant", "m1"), bucket(Base, agg(1, 20, 20, 20)), bucket(Base+w, agg(1, 1, 1, 1))),
	}}
	if d := Diff(want, mustQuery(t, s, q)); d != "" {
		t.Errorf("group by with a matcher (-want +got):\n%s", d)
	}
}

func testBucketEdges(t *testing.T, newStore NewStore) {
	s := open(t, newStore)
	w := s.CellWidth().Milliseconds()
	ls := labels(t, "merchant", "m1")
	var cells []tsstore.Cell
	for i := int64(0); i < 10; i++ {
		cells = append(cells, cell(s, "views", ls, i, 0, float64(i)))
	}
	mustWrite(t, s, cells...)
	// From on cell 1, To before cell 8, step 3 cells: buckets start at
	// 1, 4, 7; the last is cut at To so it holds only cell 7.
	got := mustQuery(t, s, tsstore.Query{Metric: "views", From: Base + w, To: Base + 8*w, Step: 3 * s.CellWidth()})
	want := &tsstore.Result{Series: []tsstore.Series{ser(ls,
		bucket(Base+w, agg(3, 1+2+3, 1, 3)),
		bucket(Base+4*w, agg(3, 4+5+6, 4, 6)),
		bucket(Base+7*w, agg(1, 7, 7, 7)),
	)}}
	if d := Diff(want, got); d != "" {
		t.Errorf("buckets aligned to From, cut at To (-want +got):\n%s", d)
	}
	// A From inside a cell excludes that cell (its Start is before From).
	got = mustQuery(t, s, tsstore.Query{Metric: "views", From: Base + w + 1, To: Base + 3*w + 1, Step: s.CellWidth()})
	want = &tsstore.Result{Series: []tsstore.Series{ser(ls,
		bucket(Base+w+1, agg(1, 2, 2, 2)),
		bucket(Base+2*w+1, agg(1, 3, 3, 3)),
	)}}
	if d := Diff(want, got); d != "" {
		t.Errorf("unaligned From (-want +got):\n%s", d)
	}
	// To is exclusive, From inclusive.
	got = mustQuery(t, s, tsstore.Query{Metric: "views", From: Base + 9*w, To: Base + 10*w, Step: s.CellWidth()})
	want = &tsstore.Result{Series: []tsstore.Series{ser(ls, bucket(Base+9*w, agg(1, 9, 9, 9)))}}
	if d := Diff(want, got); d != "" {
		t.Errorf("last cell (-want +got):\n%s", d)
	}
	got = mustQuery(t, s, tsstore.Query{Metric: "views", From: Base - w, To: Base, Step: s.CellWidth()})
	if d := Diff(&tsstore.Result{}, got); d != "" {
		t.Errorf("range ending at the first cell (-want +got):\n%s", d)
	}
}

func testEmptyAndHugeRanges(t *testing.T, newStore NewStore) {
	s := open(t, newStore)
	w := s.CellWidth().Milliseconds()
	ls := labels(t, "merchant", "m1")
	got := mustQuery(t, s, tsstore.Query{Metric: "views", From: Base, To: Base + w, Step: s.CellWidth()})
	if d := Diff(&tsstore.Result{}, got); d != "" {
		t.Errorf("empty store (-want +got):\n%s", d)
	}
	mustWrite(t, s, cell(s, "views", ls, 0, 0, 1), cell(s, "views", ls, 60*24*365, 0, 2))
	// From 1970 to year 3000 at the finest step: only non-empty buckets.
	got = mustQuery(t, s, tsstore.Query{Metric: "views", From: 0, To: tsstore.MaxTimestamp - 1, Step: s.CellWidth()})
	want := &tsstore.Result{Series: []tsstore.Series{ser(ls,
		bucket(Base, agg(1, 1, 1, 1)), bucket(Base+60*24*365*w, agg(1, 2, 2, 2)))}}
	if d := Diff(want, got); d != "" {
		t.Errorf("huge range (-want +got):\n%s", d)
	}
	// One bucket of 200 years (near the largest time.Duration).
	step := 200 * 365 * 24 * time.Hour / s.CellWidth() * s.CellWidth()
	got = mustQuery(t, s, tsstore.Query{Metric: "views", From: 0, To: tsstore.MaxTimestamp - 1, Step: step})
	want = &tsstore.Result{Series: []tsstore.Series{ser(ls, bucket(0, agg(2, 3, 1, 2)))}}
	if d := Diff(want, got); d != "" {
		t.Errorf("one huge bucket (-want +got):\n%s", d)
	}
}

func testAwkwardLabelValues(t *testing.T, newStore NewStore) {
	s := open(t, newStore)
	w := s.CellWidth().Milliseconds()
	values := []string{"a b", "a,b", "a=b", `a"b`, `a\b`, "a'b", "ünïcødé ✓", "tab\there", "new\nline", "{braces}", "a.b*c+?", " lead", "trail ", "$dollar", "100%"}
	var cells []tsstore.Cell
	for i, v := range values {
		cells = append(cells, cell(s, "awkward", labels(t, "merchant", "m1", "v", v), 0, 0, float64(i)))
	}
	mustWrite(t, s, cells...)
	for i, v := range values {
		ls := labels(t, "merchant", "m1", "v", v)
		got := mustQuery(t, s, tsstore.Query{Metric: "awkward", Matchers: []tsstore.Matcher{matcher(t, tsstore.MatchEqual, "v", v)}, From: Base, To: Base + w, Step: s.CellWidth()})
		want := &tsstore.Result{Series: []tsstore.Series{ser(ls, bucket(Base, tsstore.AggOf(float64(i))))}}
		if d := Diff(want, got); d != "" {
			t.Errorf("label value %q did not round-trip (-want +got):\n%s", v, d)
		}
	}
}

func testInvalidWrite(t *testing.T, newStore NewStore) {
	s := open(t, newStore)
	w := s.CellWidth().Milliseconds()
	ls := labels(t, "merchant", "m1")
	good := cell(s, "views", ls, 0, 0, 1)
	for _, tc := range []struct {
		name string
		bad  tsstore.Cell
	}{
		{"empty metric", tsstore.Cell{Labels: ls, Start: Base, Agg: tsstore.AggOf(1)}},
		{"bad metric", tsstore.Cell{Metric: "a-b", Labels: ls, Start: Base, Agg: tsstore.AggOf(1)}},
		{"unsorted labels", tsstore.Cell{Metric: "views", Labels: tsstore.Labels{{Name: "z", Value: "1"}, {Name: "a", Value: "2"}}, Start: Base, Agg: tsstore.AggOf(1)}},
		{"reserved label", tsstore.Cell{Metric: "views", Labels: tsstore.Labels{{Name: "__name__", Value: "x"}}, Start: Base, Agg: tsstore.AggOf(1)}},
		{"empty label value", tsstore.Cell{Metric: "views", Labels: tsstore.Labels{{Name: "a", Value: ""}}, Start: Base, Agg: tsstore.AggOf(1)}},
		{"unaligned start", tsstore.Cell{Metric: "views", Labels: ls, Start: Base + 1, Agg: tsstore.AggOf(1)}},
		{"negative start", tsstore.Cell{Metric: "views", Labels: ls, Start: -w, Agg: tsstore.AggOf(1)}},
		{"seq too large", tsstore.Cell{Metric: "views", Labels: ls, Start: Base, Seq: uint32(w), Agg: tsstore.AggOf(1)}},
		{"zero count", tsstore.Cell{Metric: "views", Labels: ls, Start: Base}},
		{"NaN sum", tsstore.Cell{Metric: "views", Labels: ls, Start: Base, Agg: tsstore.Agg{Count: 1, Sum: nan(), Min: 1, Max: 1}}},
		{"min above max", tsstore.Cell{Metric: "views", Labels: ls, Start: Base, Agg: tsstore.Agg{Count: 2, Sum: 3, Min: 2, Max: 1}}},
	} {
		err := s.Write(context.Background(), []tsstore.Cell{good, tc.bad})
		if !errors.Is(err, tsstore.ErrInvalid) {
			t.Errorf("%s: Write: got %v, want ErrInvalid", tc.name, err)
		}
		if err != nil && !strings.Contains(err.Error(), "cell 1") {
			t.Errorf("%s: error %q does not name the offending cell (index 1)", tc.name, err)
		}
	}
	got := mustQuery(t, s, tsstore.Query{Metric: "views", From: 0, To: tsstore.MaxTimestamp - 1, Step: s.CellWidth()})
	if d := Diff(&tsstore.Result{}, got); d != "" {
		t.Errorf("a rejected batch left cells behind (-want +got):\n%s", d)
	}
}

func testInvalidQuery(t *testing.T, newStore NewStore) {
	s := open(t, newStore)
	w := s.CellWidth()
	for _, tc := range []struct {
		name string
		q    tsstore.Query
	}{
		{"empty metric", tsstore.Query{From: Base, To: Base + 1, Step: w}},
		{"from equals to", tsstore.Query{Metric: "v", From: Base, To: Base, Step: w}},
		{"from after to", tsstore.Query{Metric: "v", From: Base + 10, To: Base, Step: w}},
		{"zero step", tsstore.Query{Metric: "v", From: Base, To: Base + 1}},
		{"step not a multiple of the width", tsstore.Query{Metric: "v", From: Base, To: Base + 1, Step: w + time.Millisecond}},
		{"bad regexp", tsstore.Query{Metric: "v", Matchers: []tsstore.Matcher{{Type: tsstore.MatchRegexp, Name: "a", Value: "("}}, From: Base, To: Base + 1, Step: w}},
		{"matcher without name", tsstore.Query{Metric: "v", Matchers: []tsstore.Matcher{{Type: tsstore.MatchEqual, Value: "x"}}, From: Base, To: Base + 1, Step: w}},
		{"bad group by", tsstore.Query{Metric: "v", From: Base, To: Base + 1, Step: w, GroupBy: []string{"a b"}}},
	} {
		if _, err := s.Query(context.Background(), tc.q); !errors.Is(err, tsstore.ErrInvalid) {
			t.Errorf("%s: Query: got %v, want ErrInvalid", tc.name, err)
		}
	}
	if _, err := s.Cells(context.Background(), tsstore.Selector{Metric: "v", From: Base, To: Base}); !errors.Is(err, tsstore.ErrInvalid) {
		t.Errorf("Cells with an empty range: got %v, want ErrInvalid", err)
	}
}

func testConcurrent(t *testing.T, newStore NewStore) {
	s := open(t, newStore)
	w := s.CellWidth().Milliseconds()
	const writers, cellsPerWriter = 4, 50
	var wg sync.WaitGroup
	errs := make(chan error, writers*2)
	for g := 0; g < writers; g++ {
		wg.Add(2)
		go func() {
			defer wg.Done()
			ls := labels(t, "merchant", fmt.Sprintf("m%d", g))
			for i := 0; i < cellsPerWriter; i++ {
				if err := s.Write(context.Background(), []tsstore.Cell{cell(s, "views", ls, int64(i), 0, 1)}); err != nil {
					errs <- err
					return
				}
			}
		}()
		go func() {
			defer wg.Done()
			for i := 0; i < cellsPerWriter/5; i++ {
				if _, err := s.Query(context.Background(), tsstore.Query{Metric: "views", From: Base, To: Base + cellsPerWriter*w, Step: s.CellWidth(), GroupBy: []string{}}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	got := mustQuery(t, s, tsstore.Query{Metric: "views", From: Base, To: Base + cellsPerWriter*w, Step: time.Duration(cellsPerWriter) * s.CellWidth(), GroupBy: []string{}})
	want := &tsstore.Result{Series: []tsstore.Series{ser(nil, bucket(Base, agg(writers*cellsPerWriter, writers*cellsPerWriter, 1, 1)))}}
	if d := Diff(want, got); d != "" {
		t.Errorf("after concurrent writes (-want +got):\n%s", d)
	}
}

func testCancelled(t *testing.T, newStore NewStore) {
	s := open(t, newStore)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	ls := labels(t, "merchant", "m1")
	if err := s.Write(ctx, []tsstore.Cell{cell(s, "views", ls, 0, 0, 1)}); !errors.Is(err, context.Canceled) {
		t.Errorf("Write with a cancelled context: got %v, want context.Canceled", err)
	}
	q := tsstore.Query{Metric: "views", From: Base, To: Base + 1, Step: s.CellWidth()}
	if _, err := s.Query(ctx, q); !errors.Is(err, context.Canceled) {
		t.Errorf("Query with a cancelled context: got %v, want context.Canceled", err)
	}
	if _, err := s.Cells(ctx, q.Selector()); !errors.Is(err, context.Canceled) {
		t.Errorf("Cells with a cancelled context: got %v, want context.Canceled", err)
	}
}

func testUseAfterClose(t *testing.T, newStore NewStore) {
	s := newStore(t)
	ls := labels(t, "merchant", "m1")
	mustWrite(t, s, cell(s, "views", ls, 0, 0, 1))
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := s.Write(context.Background(), []tsstore.Cell{cell(s, "views", ls, 1, 0, 1)}); !errors.Is(err, tsstore.ErrClosed) {
		t.Errorf("Write after Close: got %v, want ErrClosed", err)
	}
	q := tsstore.Query{Metric: "views", From: Base, To: Base + 1, Step: s.CellWidth()}
	if _, err := s.Query(context.Background(), q); !errors.Is(err, tsstore.ErrClosed) {
		t.Errorf("Query after Close: got %v, want ErrClosed", err)
	}
	if _, err := s.Cells(context.Background(), q.Selector()); !errors.Is(err, tsstore.ErrClosed) {
		t.Errorf("Cells after Close: got %v, want ErrClosed", err)
	}
}

// testMatchesMemstore writes random batches of cells (some repeated, some
// conflicting) to the store and to memstore, and compares random queries.
func testMatchesMemstore(t *testing.T, newStore NewStore) {
	rapid.Check(t, func(rt *rapid.T) {
		s := newStore(t)
		defer s.Close()
		oracle := memstore.New(&memstore.Options{CellWidth: s.CellWidth()})
		w := s.CellWidth().Milliseconds()
		merchants := []string{"m1", "m2", "m3"}
		pages := []string{"", "/", "/cart"}
		genCell := rapid.Custom(func(rt *rapid.T) tsstore.Cell {
			kv := []string{"merchant", rapid.SampledFrom(merchants).Draw(rt, "merchant")}
			if p := rapid.SampledFrom(pages).Draw(rt, "page"); p != "" {
				kv = append(kv, "page", p)
			}
			c := tsstore.Cell{
				Metric: rapid.SampledFrom([]string{"views", "revenue"}).Draw(rt, "metric"),
				Labels: labels(rt, kv...),
				Start:  Base + rapid.Int64Range(0, 30).Draw(rt, "cell")*w,
				Seq:    uint32(rapid.IntRange(0, 2).Draw(rt, "seq")),
				Writer: rapid.SampledFrom([]string{"", "w1", "w2/1"}).Draw(rt, "writer"),
			}
			for _, v := range rapid.SliceOfN(rapid.IntRange(-1000, 1000), 1, 4).Draw(rt, "values") {
				c.Add(float64(v))
			}
			return c
		})
		batches := rapid.IntRange(1, 6).Draw(rt, "batches")
		for i := 0; i < batches; i++ {
			batch := rapid.SliceOfN(genCell, 1, 20).Draw(rt, "batch")
			// Keep each identity once per batch, as a flush does.
			seen := map[tsstore.CellID]bool{}
			var uniq []tsstore.Cell
			for _, c := range batch {
				if id := c.ID(); !seen[id] {
					seen[id] = true
					uniq = append(uniq, c)
				}
			}
			// Write cell by cell so that a conflict affects only its cell
			// in both stores.
			for _, c := range uniq {
				errWant := oracle.Write(context.Background(), []tsstore.Cell{c})
				errGot := s.Write(context.Background(), []tsstore.Cell{c})
				if errors.Is(errWant, tsstore.ErrConflict) != errors.Is(errGot, tsstore.ErrConflict) || (errWant == nil) != (errGot == nil) {
					rt.Fatalf("Write(%+v): store says %v, memstore says %v", c, errGot, errWant)
				}
			}
		}
		for i := 0; i < 3; i++ {
			from := Base + rapid.Int64Range(-2, 30).Draw(rt, "from")*w + rapid.SampledFrom([]int64{0, 0, 1}).Draw(rt, "fromOffset")
			q := tsstore.Query{
				Metric: rapid.SampledFrom([]string{"views", "revenue"}).Draw(rt, "qmetric"),
				From:   from,
				To:     from + rapid.Int64Range(1, 40).Draw(rt, "len")*w,
				Step:   time.Duration(rapid.IntRange(1, 10).Draw(rt, "step")) * s.CellWidth(),
			}
			switch rapid.IntRange(0, 3).Draw(rt, "matcher") {
			case 1:
				q.Matchers = []tsstore.Matcher{matcher(rt, tsstore.MatchEqual, "merchant", rapid.SampledFrom(merchants).Draw(rt, "m"))}
			case 2:
				q.Matchers = []tsstore.Matcher{matcher(rt, tsstore.MatchRegexp, "page", "/.*")}
			case 3:
				q.Matchers = []tsstore.Matcher{matcher(rt, tsstore.MatchNotEqual, "page", "/cart")}
			}
			switch rapid.IntRange(0, 2).Draw(rt, "group") {
			case 1:
				q.GroupBy = []string{"merchant"}
			case 2:
				q.GroupBy = []string{}
			}
			want, err := oracle.Query(context.Background(), q)
			if err != nil {
				rt.Fatal(err)
			}
			got, err := s.Query(context.Background(), q)
			if err != nil {
				rt.Fatalf("Query(%+v): %v", q, err)
			}
			if d := Diff(want, got); d != "" {
				rt.Fatalf("Query(%+v) differs from memstore (-memstore +store):\n%s", q, d)
			}
		}
	})
}

func nan() float64 {
	var zero float64
	return zero / zero
}
