// Package cachetest is the conformance suite every writeback.Cache runs:
//
//	func TestConformance(t *testing.T) {
//		cachetest.Run(t, func(t *testing.T) cachetest.Opener {
//			dir := t.TempDir()
//			return func(t *testing.T) writeback.Cache { c, err := localcache.Open(dir, nil); ...; return c }
//		})
//	}
//
// An Opener opens the same underlying storage each time it is called, so
// the suite can close a cache and open it again to check what survives.
package cachetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/writeback"
)

// Opener opens the cache under test on its storage; each call after the
// previous cache was closed sees what that one left.
type Opener func(t *testing.T) writeback.Cache

// NewStorage makes fresh, empty storage for one test and returns its
// Opener.
type NewStorage func(t *testing.T) Opener

// Width is the cell width the suite writes with.
const Width = time.Minute

// Base is the time around which the suite writes (ms).
var Base = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()

// OrderProcessor turns an "order" point into "orders" (1) and "revenue"
// (the order's value), as the example server does, and keeps every other
// point: a processor whose points differ from the raw ones, for tests of
// a cache or engine that must keep both.
var OrderProcessor = tsstore.ProcessorFunc{V: "orders/1", F: func(dst []tsstore.Point, p tsstore.Point) ([]tsstore.Point, error) {
	if p.Metric != "order" {
		return append(dst, p), nil
	}
	o, r := p, p
	o.Metric, o.Value = "orders", 1
	r.Metric = "revenue"
	return append(dst, o, r), nil
}}

// Run runs the suite.
func Run(t *testing.T, newStorage NewStorage) {
	tests := []struct {
		name string
		fn   func(*testing.T, Opener)
	}{
		{"AppendAndCells", testAppendAndCells},
		{"ProcessedDiffersFromRaw", testProcessed},
		{"SealCommitCycle", testSealCommit},
		{"SealedLogChunks", testSealedLogChunks},
		{"SealedCellList", testSealedCellList},
		{"Reopen", testReopen},
		{"ConcurrentAppendsAndSeals", testConcurrent},
		{"Closed", testClosed},
		{"Quarantine", testQuarantine},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newStorage(t)) })
	}
	t.Run("WriterID", func(t *testing.T) { testWriterID(t, newStorage) })
}

// testWriterID checks that a cache's writer id is valid, the same across
// reopens (also after its generations were committed), and different for
// another storage; new storage has no legacy generations (since is the
// first generation).
func testWriterID(t *testing.T, newStorage NewStorage) {
	o := newStorage(t)
	c := o(t)
	id, since := c.WriterID()
	if err := writeback.ValidateWriterID(id); err != nil {
		t.Fatalf("WriterID() = %q: %v", id, err)
	}
	mustAppend(t, c, batch(pt("views", "m1", Base, 1)))
	g, ok, err := c.Seal(ctx)
	if err != nil || !ok {
		t.Fatalf("Seal = %d, %v, %v", g, ok, err)
	}
	if since > g {
		t.Errorf("WriterID() since = %d on new storage, after its first generation %d", since, g)
	}
	if err := c.Commit(ctx, g); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	c = open(t, o)
	if id2, since2 := c.WriterID(); id2 != id || since2 != since {
		t.Errorf("WriterID() after reopen = %q, %d; want %q, %d", id2, since2, id, since)
	}
	other := open(t, newStorage(t))
	if id3, _ := other.WriterID(); id3 == id {
		t.Errorf("two storages have the same writer id %q", id)
	}
}

func open(t *testing.T, o Opener) writeback.Cache {
	c := o(t)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func pt(metric, merchant string, ts int64, v float64) tsstore.Point {
	return tsstore.Point{Metric: metric, Labels: tsstore.Labels{{Name: "merchant", Value: merchant}}, Timestamp: ts, Value: v}
}

func batch(ps ...tsstore.Point) *writeback.Batch {
	return &writeback.Batch{Raw: ps, Processed: ps, CellWidth: Width}
}

var ctx = context.Background()

func mustAppend(t testing.TB, c writeback.Cache, b *writeback.Batch) {
	t.Helper()
	if err := c.Append(ctx, b); err != nil {
		t.Fatalf("Append: %v", err)
	}
}

func all() tsstore.Selector {
	return tsstore.Selector{Metric: "views", From: 0, To: tsstore.MaxTimestamp - 1}
}

func cellsOf(t testing.TB, c writeback.Cache, sel tsstore.Selector) []writeback.GenCell {
	t.Helper()
	cs, err := c.Cells(ctx, sel)
	if err != nil {
		t.Fatalf("Cells: %v", err)
	}
	slices.SortFunc(cs, func(a, b writeback.GenCell) int {
		if c := a.Labels.Compare(b.Labels); c != 0 {
			return c
		}
		if a.Start != b.Start {
			return int(a.Start - b.Start)
		}
		return int(a.Gen) - int(b.Gen)
	})
	return cs
}

func gc(merchant string, start int64, gen uint64, sealed bool, a tsstore.Agg) writeback.GenCell {
	return writeback.GenCell{Cell: tsstore.Cell{Metric: "views", Labels: tsstore.Labels{{Name: "merchant", Value: merchant}}, Start: start, Agg: a}, Gen: gen, Sealed: sealed}
}

func agg(vals ...float64) tsstore.Agg {
	var a tsstore.Agg
	for _, v := range vals {
		a.Add(v)
	}
	return a
}

func testAppendAndCells(t *testing.T, o Opener) {
	c := open(t, o)
	w := Width.Milliseconds()
	mustAppend(t, c, batch(pt("views", "m1", Base, 1), pt("views", "m1", Base+10, 2), pt("views", "m2", Base+w, 5), pt("orders", "m1", Base, 7)))
	mustAppend(t, c, batch(pt("views", "m1", Base+w-1, 3)))
	got := cellsOf(t, c, all())
	if len(got) == 0 {
		t.Fatal("no cells after Append")
	}
	gen := got[0].Gen
	want := []writeback.GenCell{gc("m1", Base, gen, false, agg(1, 2, 3)), gc("m2", Base+w, gen, false, agg(5))}
	if d := cmp.Diff(want, got, cmpopts.EquateEmpty()); d != "" {
		t.Errorf("Cells (-want +got):\n%s", d)
	}
	// Matchers and range.
	m, _ := tsstore.NewMatcher(tsstore.MatchEqual, "merchant", "m2")
	got = cellsOf(t, c, tsstore.Selector{Metric: "views", Matchers: []tsstore.Matcher{m}, From: Base, To: Base + 2*w})
	if d := cmp.Diff([]writeback.GenCell{gc("m2", Base+w, gen, false, agg(5))}, got, cmpopts.EquateEmpty()); d != "" {
		t.Errorf("Cells with merchant=m2 (-want +got):\n%s", d)
	}
	re, _ := tsstore.NewMatcher(tsstore.MatchRegexp, "merchant", "m.*")
	got = cellsOf(t, c, tsstore.Selector{Metric: "views", Matchers: []tsstore.Matcher{re}, From: Base + w, To: Base + 2*w})
	if d := cmp.Diff([]writeback.GenCell{gc("m2", Base+w, gen, false, agg(5))}, got, cmpopts.EquateEmpty()); d != "" {
		t.Errorf("Cells with a range (-want +got):\n%s", d)
	}
	st := c.Stats()
	if st.Points != 5 || st.Cells != 3 || st.Bytes <= 0 || st.OldestWrite.IsZero() {
		t.Errorf("Stats = %+v, want 5 points, 3 cells, some bytes, an oldest write", st)
	}
}

func testProcessed(t *testing.T, o Opener) {
	c := open(t, o)
	raw := []tsstore.Point{pt("order", "m1", Base, 30)}
	processed := []tsstore.Point{pt("views", "m1", Base, 1), pt("views", "m1", Base+1, 29)}
	mustAppend(t, c, &writeback.Batch{Raw: raw, Processed: processed, CellWidth: Width})
	got := cellsOf(t, c, all())
	if len(got) != 1 || got[0].Agg != agg(1, 29) {
		t.Fatalf("cells = %+v, want one views cell {2, 30, 1, 29} from the processed points", got)
	}
	if o, _ := c.Cells(ctx, tsstore.Selector{Metric: "order", From: 0, To: tsstore.MaxTimestamp - 1}); len(o) != 0 {
		t.Errorf("raw points became cells: %+v", o)
	}
	gen, ok, err := c.Seal(ctx)
	if err != nil || !ok {
		t.Fatalf("Seal = %d, %v, %v", gen, ok, err)
	}
	var logged []tsstore.Point
	if err := c.SealedLog(ctx, gen, 100, func(ps []tsstore.Point) error { logged = append(logged, ps...); return nil }); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(raw, logged); d != "" {
		t.Errorf("the log must hold the raw points (-want +got):\n%s", d)
	}
}

func testSealCommit(t *testing.T, o Opener) {
	c := open(t, o)
	if _, ok, err := c.Seal(ctx); err != nil || ok {
		t.Fatalf("Seal of an empty cache = %v, %v; want nothing sealed", ok, err)
	}
	mustAppend(t, c, batch(pt("views", "m1", Base, 1)))
	g1, ok, err := c.Seal(ctx)
	if err != nil || !ok {
		t.Fatalf("Seal = %v, %v", ok, err)
	}
	mustAppend(t, c, batch(pt("views", "m1", Base, 2)))
	got := cellsOf(t, c, all())
	if len(got) != 2 || !got[0].Sealed || got[0].Gen != g1 || got[1].Sealed || got[1].Gen <= g1 {
		t.Fatalf("after a seal the same cell must appear in the sealed and the open generation: %+v", got)
	}
	g2, ok, err := c.Seal(ctx)
	if err != nil || !ok || g2 != got[1].Gen {
		t.Fatalf("second Seal = %d, %v, %v; want generation %d", g2, ok, err, got[1].Gen)
	}
	gens, err := c.Sealed(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(gens) != 2 || gens[0].Gen != g1 || gens[1].Gen != g2 || gens[0].Points != 1 || gens[0].Cells != 1 {
		t.Fatalf("Sealed = %+v, want generations %d and %d, oldest first, 1 point and 1 cell each", gens, g1, g2)
	}
	cells, err := c.SealedCells(ctx, g1)
	if err != nil || len(cells) != 1 || cells[0].Agg != agg(1) {
		t.Fatalf("SealedCells(%d) = %+v, %v", g1, cells, err)
	}
	if err := c.Commit(ctx, g1); err != nil {
		t.Fatal(err)
	}
	if err := c.Commit(ctx, g1); err != nil {
		t.Errorf("committing a committed generation again: %v, want nil", err)
	}
	got = cellsOf(t, c, all())
	if len(got) != 1 || got[0].Gen != g2 || got[0].Agg != agg(2) {
		t.Fatalf("after Commit(%d): %+v", g1, got)
	}
	if _, err := c.SealedCells(ctx, g1); err == nil {
		t.Error("SealedCells of a committed generation succeeded")
	}
	if err := c.Commit(ctx, g2); err != nil {
		t.Fatal(err)
	}
	if st := c.Stats(); st.Points != 0 || st.Cells != 0 || st.Sealed != 0 || !st.OldestWrite.IsZero() {
		t.Errorf("Stats after committing everything = %+v, want zeros", st)
	}
}

// testSealedCellList checks a cache that lists its sealed cells
// (writeback.SealedCellLister): the list holds SealedCells' cells in flush
// order (by start, then metric, then labels), the same on every call and
// in ranges of any size, and ends with the generation's Commit.
func testSealedCellList(t *testing.T, o Opener) {
	c := open(t, o)
	l, ok := c.(writeback.SealedCellLister)
	if !ok {
		t.Skipf("%T lists no sealed cells (writeback.SealedCellLister is optional)", c)
	}
	var ps []tsstore.Point
	for i := 0; i < 40; i++ {
		// Starts, metrics and merchants out of their order.
		start := Base + int64((i*7)%5)*Width.Milliseconds()
		ps = append(ps, pt([]string{"views", "orders", "amount"}[i%3], fmt.Sprintf("m%d", (i*3)%4), start+int64(i), float64(i)))
	}
	mustAppend(t, c, batch(ps[:20]...))
	mustAppend(t, c, batch(ps[20:]...))
	gen, _, err := c.Seal(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want, err := c.SealedCells(ctx, gen)
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(want, writeback.FlushOrder)
	for call := 0; call < 2; call++ {
		list, err := l.SealedCellList(ctx, gen)
		if err != nil {
			t.Fatal(err)
		}
		if list.Len() != len(want) {
			t.Fatalf("SealedCellList(%d).Len() = %d, want %d cells", gen, list.Len(), len(want))
		}
		for _, k := range []int{1, 3, 7, len(want)} {
			got := []tsstore.Cell{{Metric: "kept"}} // AppendCells appends
			for from := 0; from < list.Len(); from += k {
				got = list.AppendCells(got, from, min(from+k, list.Len()))
			}
			if d := cmp.Diff(append([]tsstore.Cell{{Metric: "kept"}}, want...), got); d != "" {
				t.Fatalf("call %d, ranges of %d: the list differs from SealedCells in flush order (-want +got):\n%s", call+1, k, d)
			}
		}
	}
	if err := c.Commit(ctx, gen); err != nil {
		t.Fatal(err)
	}
	if _, err := l.SealedCellList(ctx, gen); err == nil {
		t.Error("SealedCellList of a committed generation succeeded")
	}
}

func testSealedLogChunks(t *testing.T, o Opener) {
	c := open(t, o)
	var want []tsstore.Point
	for b := 0; b < 7; b++ {
		var ps []tsstore.Point
		for i := 0; i < 3; i++ {
			ps = append(ps, pt("views", fmt.Sprintf("m%d", i), Base+int64(b*10+i), float64(b*10+i)))
		}
		want = append(want, ps...)
		mustAppend(t, c, batch(ps...))
	}
	gen, _, err := c.Seal(ctx)
	if err != nil {
		t.Fatal(err)
	}
	read := func() ([][]tsstore.Point, error) {
		var chunks [][]tsstore.Point
		err := c.SealedLog(ctx, gen, 4, func(ps []tsstore.Point) error {
			chunks = append(chunks, slices.Clone(ps))
			return nil
		})
		return chunks, err
	}
	a, err := read()
	if err != nil {
		t.Fatal(err)
	}
	b, err := read()
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(a, b); d != "" {
		t.Errorf("SealedLog chunks differ between calls (-first +second):\n%s", d)
	}
	var sizes []int
	var flat []tsstore.Point
	for _, ch := range a {
		sizes = append(sizes, len(ch))
		flat = append(flat, ch...)
	}
	if d := cmp.Diff([]int{4, 4, 4, 4, 4, 1}, sizes); d != "" {
		t.Errorf("chunk sizes (-want +got):\n%s", d)
	}
	if d := cmp.Diff(want, flat); d != "" {
		t.Errorf("SealedLog must return the raw points in log order (-want +got):\n%s", d)
	}
	stop := errors.New("stop")
	if err := c.SealedLog(ctx, gen, 4, func([]tsstore.Point) error { return stop }); !errors.Is(err, stop) {
		t.Errorf("an error from fn: got %v, want it returned", err)
	}
}

func testReopen(t *testing.T, o Opener) {
	c := o(t)
	mustAppend(t, c, batch(pt("views", "m1", Base, 1)))
	g1, _, err := c.Seal(ctx)
	if err != nil {
		t.Fatal(err)
	}
	mustAppend(t, c, batch(pt("views", "m1", Base, 2), pt("views", "m2", Base, 3)))
	before := cellsOf(t, c, all())
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	c = open(t, o)
	after := cellsOf(t, c, all())
	if d := cmp.Diff(before, after, cmpopts.EquateEmpty()); d != "" {
		t.Errorf("cells changed across Close and Open (-before +after):\n%s", d)
	}
	gens, err := c.Sealed(ctx)
	if err != nil || len(gens) != 1 || gens[0].Gen != g1 {
		t.Fatalf("Sealed after reopen = %+v, %v; want generation %d", gens, err, g1)
	}
	g2, ok, err := c.Seal(ctx)
	if err != nil || !ok || g2 <= g1 {
		t.Fatalf("Seal after reopen = %d, %v, %v; want a generation after %d", g2, ok, err, g1)
	}
	for _, g := range []uint64{g1, g2} {
		if err := c.Commit(ctx, g); err != nil {
			t.Fatal(err)
		}
	}
	mustAppend(t, c, batch(pt("views", "m1", Base, 4)))
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	c = open(t, o)
	g3, ok, err := c.Seal(ctx)
	if err != nil || !ok || g3 <= g2 {
		t.Errorf("generation numbers must grow across restarts even when all were committed: got %d after %d (%v, %v)", g3, g2, ok, err)
	}
}

// testConcurrent checks that concurrent appends and seals put each batch
// entirely into one generation and lose none.
func testConcurrent(t *testing.T, o Opener) {
	c := open(t, o)
	const writers, batches, per = 4, 50, 10
	var wg sync.WaitGroup
	errs := make(chan error, writers+1)
	stop := make(chan struct{})
	var sealed []uint64
	var sealMu sync.Mutex
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			g, ok, err := c.Seal(ctx)
			if err != nil {
				errs <- err
				return
			}
			if ok {
				sealMu.Lock()
				sealed = append(sealed, g)
				sealMu.Unlock()
			}
			time.Sleep(time.Millisecond)
		}
	}()
	var wwg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wwg.Add(1)
		go func() {
			defer wwg.Done()
			for b := 0; b < batches; b++ {
				var ps []tsstore.Point
				// Each batch writes `per` points into its own cell.
				start := Base + int64(w*batches+b)*Width.Milliseconds()
				for i := 0; i < per; i++ {
					ps = append(ps, pt("views", fmt.Sprintf("w%d", w), start+int64(i), 1))
				}
				if err := c.Append(ctx, batch(ps...)); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wwg.Wait()
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	got := cellsOf(t, c, all())
	if len(got) != writers*batches {
		t.Fatalf("%d cells, want %d: a batch was split across generations or lost", len(got), writers*batches)
	}
	for _, cell := range got {
		if cell.Count != per {
			t.Fatalf("cell %+v has count %d, want %d: a batch was split across generations", cell, cell.Count, per)
		}
	}
	var logged int
	for _, g := range sealed {
		if err := c.SealedLog(ctx, g, 1000, func(ps []tsstore.Point) error { logged += len(ps); return nil }); err != nil {
			t.Fatal(err)
		}
	}
	if g, ok, _ := c.Seal(ctx); ok {
		if err := c.SealedLog(ctx, g, 1000, func(ps []tsstore.Point) error { logged += len(ps); return nil }); err != nil {
			t.Fatal(err)
		}
	}
	if logged != writers*batches*per {
		t.Errorf("the sealed logs hold %d points, want %d", logged, writers*batches*per)
	}
}

func testClosed(t *testing.T, o Opener) {
	c := o(t)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := c.Append(ctx, batch(pt("views", "m1", Base, 1))); !errors.Is(err, tsstore.ErrClosed) {
		t.Errorf("Append after Close: %v, want ErrClosed", err)
	}
	if _, _, err := c.Seal(ctx); !errors.Is(err, tsstore.ErrClosed) {
		t.Errorf("Seal after Close: %v, want ErrClosed", err)
	}
	if _, err := c.Cells(ctx, all()); !errors.Is(err, tsstore.ErrClosed) {
		t.Errorf("Cells after Close: %v, want ErrClosed", err)
	}
}

// testQuarantine checks the optional writeback.QuarantineCache capability:
// added cells are listed with everything they were added with, a cell
// added again replaces its entry, released cells leave, and all of it
// survives a reopen.
func testQuarantine(t *testing.T, o Opener) {
	c := o(t)
	q, ok := c.(writeback.QuarantineCache)
	if !ok {
		_ = c.Close()
		t.Skipf("%T does not implement writeback.QuarantineCache", c)
	}
	at := time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)
	qc := func(merchant, writer string, seq uint32, reason string) writeback.QuarantinedCell {
		return writeback.QuarantinedCell{
			Cell: tsstore.Cell{Metric: "revenue", Labels: tsstore.Labels{{Name: "currency", Value: "EUR"}, {Name: "merchant", Value: merchant}},
				Start: Base, Writer: writer, Seq: seq, Agg: agg(7, 3.5)},
			Gen: uint64(seq), Reason: reason, Time: at,
		}
	}
	a, b, d := qc("m1", "w1", 1, "conflict: stored as 10"), qc("m1", "w1/2", 1, "invalid: bad"), qc("m2 \"x\"", "", 3, "conflict")
	check := func(what string, want ...writeback.QuarantinedCell) {
		t.Helper()
		// The count first: after a reopen it must be known before any
		// listing (the engine's stats and gauge read it).
		if n := q.QuarantinedCount(); n != len(want) {
			t.Errorf("%s: QuarantinedCount before listing = %d, want %d", what, n, len(want))
		}
		got, err := q.Quarantined(ctx)
		if err != nil {
			t.Fatalf("%s: Quarantined: %v", what, err)
		}
		sortQ := cmpopts.SortSlices(func(x, y writeback.QuarantinedCell) bool {
			return x.Cell.Labels.Compare(y.Cell.Labels) < 0 || x.Cell.Labels.Compare(y.Cell.Labels) == 0 && x.Cell.Writer < y.Cell.Writer
		})
		if d := cmp.Diff(want, got, sortQ, cmpopts.EquateEmpty()); d != "" {
			t.Errorf("%s: Quarantined (-want +got):\n%s", what, d)
		}
		if n := q.QuarantinedCount(); n != len(want) {
			t.Errorf("%s: QuarantinedCount = %d, want %d", what, n, len(want))
		}
	}
	check("empty")
	if err := q.Quarantine(ctx, []writeback.QuarantinedCell{a, b}); err != nil {
		t.Fatalf("Quarantine: %v", err)
	}
	a2 := a
	a2.Reason, a2.Time = "conflict again", at.Add(time.Hour)
	if err := q.Quarantine(ctx, []writeback.QuarantinedCell{a2, d}); err != nil {
		t.Fatalf("Quarantine: %v", err)
	}
	check("after two adds", a2, b, d)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	c = o(t)
	q = c.(writeback.QuarantineCache)
	check("after reopen", a2, b, d)
	unknown := a.Cell
	unknown.Seq = 9
	if err := q.Release(ctx, []tsstore.CellID{b.Cell.ID(), unknown.ID()}); err != nil {
		t.Fatalf("Release: %v", err)
	}
	check("after release", a2, d)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	c = open(t, o)
	q = c.(writeback.QuarantineCache)
	check("after release and reopen", a2, d)
	if err := q.Release(ctx, []tsstore.CellID{a.Cell.ID(), d.Cell.ID()}); err != nil {
		t.Fatalf("Release: %v", err)
	}
	check("all released")
}
