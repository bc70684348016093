package promtsdb_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb"

	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/tsstore/memstore"
	"github.com/hourglass-io/hourglass/tsstore/promtsdb"
	"github.com/hourglass-io/hourglass/tsstore/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) tsstore.Store {
		s, err := promtsdb.Open(t.TempDir(), nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	})
}

// TestConformanceCommittingOften runs the conformance suite against a
// store that commits every few samples that may be out of order, as a
// Write of many late cells does (oooCommitSamples).
func TestConformanceCommittingOften(t *testing.T) {
	storetest.Run(t, func(t *testing.T) tsstore.Store {
		s, err := promtsdb.Open(t.TempDir(), nil)
		if err != nil {
			t.Fatal(err)
		}
		promtsdb.CommitEvery(s, 3)
		t.Cleanup(func() { _ = s.Close() })
		return s
	})
}

var base = storetest.Base

const minute = int64(60_000)

func open(t *testing.T, dir string) *promtsdb.Store {
	t.Helper()
	s, err := promtsdb.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func mkLabels(t testing.TB, kv ...string) tsstore.Labels {
	t.Helper()
	ls, err := tsstore.NewLabels(kv...)
	if err != nil {
		t.Fatal(err)
	}
	return ls
}

func mkCell(metric string, ls tsstore.Labels, start int64, seq uint32, vals ...float64) tsstore.Cell {
	c := tsstore.Cell{Metric: metric, Labels: ls, Start: start, Seq: seq}
	for _, v := range vals {
		c.Add(v)
	}
	return c
}

func write(t testing.TB, s tsstore.Store, cells ...tsstore.Cell) {
	t.Helper()
	if err := s.Write(context.Background(), cells); err != nil {
		t.Fatalf("Write: %v", err)
	}
}

func allCells(t testing.TB, s tsstore.Store, metric string) []tsstore.Cell {
	t.Helper()
	cells, err := s.Cells(context.Background(), tsstore.Selector{Metric: metric, From: 0, To: tsstore.MaxTimestamp - 1})
	if err != nil {
		t.Fatal(err)
	}
	return cells
}

// TestSeriesLayout checks the documented mapping of a cell to four TSDB
// series, read through the DB that As exposes: the legacy writer's without
// a writer label, another writer's with __writer__.
func TestSeriesLayout(t *testing.T) {
	s := open(t, t.TempDir())
	ls := mkLabels(t, "merchant", "m1", "Zone", "eu")
	w := mkCell("revenue", ls, base, 3, 1)
	w.Writer = "a1b2/1"
	write(t, s, mkCell("revenue", ls, base, 3, 10, 20, -5), w)
	var db *tsdb.DB
	if !s.As(&db) || db == nil {
		t.Fatal("As(**tsdb.DB) returned false")
	}
	var notDB *int
	if s.As(&notDB) {
		t.Error("As(**int) returned true")
	}
	q, err := db.Querier(0, tsstore.MaxTimestamp)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	set := q.Select(context.Background(), true, nil, labels.MustNewMatcher(labels.MatchEqual, "merchant", "m1"))
	got := map[string][2]float64{}
	for set.Next() {
		it := set.At().Iterator(nil)
		for it.Next() != 0 {
			ts, v := it.At()
			got[set.At().Labels().String()] = [2]float64{float64(ts), v}
		}
	}
	if err := set.Err(); err != nil {
		t.Fatal(err)
	}
	ts := float64(base + 3)
	want := map[string][2]float64{
		`{Zone="eu", __name__="revenue:count", merchant="m1"}`:                      {ts, 3},
		`{Zone="eu", __name__="revenue:sum", merchant="m1"}`:                        {ts, 25},
		`{Zone="eu", __name__="revenue:min", merchant="m1"}`:                        {ts, -5},
		`{Zone="eu", __name__="revenue:max", merchant="m1"}`:                        {ts, 20},
		`{Zone="eu", __name__="revenue:count", __writer__="a1b2/1", merchant="m1"}`: {ts, 1},
		`{Zone="eu", __name__="revenue:sum", __writer__="a1b2/1", merchant="m1"}`:   {ts, 1},
		`{Zone="eu", __name__="revenue:min", __writer__="a1b2/1", merchant="m1"}`:   {ts, 1},
		`{Zone="eu", __name__="revenue:max", __writer__="a1b2/1", merchant="m1"}`:   {ts, 1},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("TSDB series (-want +got):\n%s", d)
	}
}

// TestConflicts checks idempotent and conflicting rewrites in every place a
// sample can be: the in-order head, the out-of-order head, a persisted
// block, and after a reopen, where the TSDB alone would accept or drop a
// different value silently. Two writers (the legacy one and another) write
// the same identities with different aggregates: the checks hold per
// writer, and a third writer's partial of a stored identity is no conflict.
func TestConflicts(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	ls := mkLabels(t, "merchant", "m1")
	at := func(min int64) int64 { return base + min*minute }
	const writerB = "b0b/1"
	byB := func(c tsstore.Cell) tsstore.Cell {
		c.Writer = writerB
		c.Add(1000)
		return c
	}
	// Four hours of cells: the head becomes compactable.
	var cells []tsstore.Cell
	for i := int64(0); i < 240; i++ {
		cells = append(cells, mkCell("orders", ls, at(i), 0, float64(i)))
	}
	write(t, s, cells...)
	for _, c := range cells {
		write(t, s, byB(c)) // one by one: each an in-order append
	}
	// A late partial (out of order) in the head.
	late := mkCell("orders", ls, at(200), 1, 7)
	write(t, s, late, byB(late))

	third := 0
	check1 := func(t *testing.T, s *promtsdb.Store, where string, c tsstore.Cell) {
		t.Helper()
		before := allCells(t, s, "orders")
		if err := s.Write(context.Background(), []tsstore.Cell{c}); err != nil {
			t.Errorf("%s: identical rewrite: %v", where, err)
		}
		other := c
		other.Sum++
		other.Max++
		err := s.Write(context.Background(), []tsstore.Cell{other})
		if !errors.Is(err, tsstore.ErrConflict) {
			t.Errorf("%s: rewrite with another aggregate: got %v, want ErrConflict", where, err)
		} else if !strings.Contains(err.Error(), "orders") || !strings.Contains(err.Error(), "cell 0") {
			t.Errorf("%s: error %q does not name the cell", where, err)
		}
		if d := cmp.Diff(before, allCells(t, s, "orders"), storetest.CellOrder); d != "" {
			t.Errorf("%s: rewrites changed the stored cells (-before +after):\n%s", where, d)
		}
		third++
		other.Writer = fmt.Sprintf("third-%d", third)
		if err := s.Write(context.Background(), []tsstore.Cell{other}); err != nil {
			t.Errorf("%s: another writer's partial of the identity: %v", where, err)
		}
		if d := cmp.Diff(append(before, other), allCells(t, s, "orders"), storetest.CellOrder); d != "" {
			t.Errorf("%s: another writer's partial (-want +got):\n%s", where, d)
		}
	}
	check := func(t *testing.T, s *promtsdb.Store, where string, c tsstore.Cell) {
		t.Helper()
		check1(t, s, where, c)
		check1(t, s, where+" (writer "+writerB+")", byB(c))
	}
	check(t, s, "newest in-order sample", cells[239])
	check(t, s, "older in-order sample in the head", cells[230])
	check(t, s, "out-of-order sample in the head", late)

	var db *tsdb.DB
	s.As(&db)
	if err := db.Compact(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(db.Blocks()) == 0 {
		t.Fatal("no block after Compact")
	}
	check(t, s, "sample in a block", cells[3])
	// A new partial of a compacted cell is not a conflict.
	write(t, s, mkCell("orders", ls, at(3), 1, 100), byB(mkCell("orders", ls, at(3), 1, 100)))

	// Reopen: the Store must read back what it no longer remembers.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, dir)
	check(t, s, "block after reopen", cells[3])
	check(t, s, "new partial after reopen", mkCell("orders", ls, at(3), 1, 100))
	check(t, s, "head after reopen (WAL replay)", cells[239])
	check(t, s, "out-of-order sample after reopen (WBL replay)", late)

	// Within one batch.
	c := mkCell("orders", ls, at(300), 0, 1)
	d := c
	d.Sum = 2
	d.Max = 2
	if err := s.Write(context.Background(), []tsstore.Cell{c, c}); err != nil {
		t.Errorf("the same cell twice in a batch: %v", err)
	}
	if err := s.Write(context.Background(), []tsstore.Cell{mkCell("orders", ls, at(301), 0, 1), d}); !errors.Is(err, tsstore.ErrConflict) {
		t.Errorf("batch conflicting with a stored cell: got %v, want ErrConflict", err)
	}
	e := mkCell("orders", ls, at(302), 0, 1)
	f := e
	f.Sum, f.Max = 5, 5
	if err := s.Write(context.Background(), []tsstore.Cell{e, f}); !errors.Is(err, tsstore.ErrConflict) {
		t.Errorf("batch with two aggregates for one identity: got %v, want ErrConflict", err)
	}
	// The second aggregate after a later cell of the series.
	if err := s.Write(context.Background(), []tsstore.Cell{e, mkCell("orders", ls, at(303), 0, 1), f}); !errors.Is(err, tsstore.ErrConflict) {
		t.Errorf("batch with two aggregates for one identity, a later cell between them: got %v, want ErrConflict", err)
	}
	// Nothing of the failed batches was stored.
	got, err := s.Cells(context.Background(), tsstore.Selector{Metric: "orders", From: at(300), To: at(303)})
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]tsstore.Cell{c}, got); d != "" {
		t.Errorf("cells after failed batches (-want +got):\n%s", d)
	}
}

// TestReopen checks that everything written (by three writers) is there
// after Close and Open, compared with memstore.
func TestReopen(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	oracle := memstore.New(nil)
	var cells []tsstore.Cell
	for m := 0; m < 5; m++ {
		ls := mkLabels(t, "merchant", string(rune('a'+m)))
		for i := int64(0); i < 300; i += 1 + int64(m) {
			for w, writer := range []string{"", "w1", "w2/1"}[:1+m%3] {
				c := mkCell("views", ls, base+i*minute, 0, float64(i), float64(m+w))
				c.Writer = writer
				cells = append(cells, c)
			}
		}
		cells = append(cells, mkCell("views", ls, base, 1, 1)) // a late partial
	}
	write(t, s, cells...)
	write(t, oracle, cells...)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Query(context.Background(), tsstore.Query{Metric: "views", From: base, To: base + 1, Step: time.Minute}); !errors.Is(err, tsstore.ErrClosed) {
		t.Errorf("Query after Close: got %v, want ErrClosed", err)
	}
	s = open(t, dir)
	for _, step := range []time.Duration{time.Minute, 7 * time.Minute, time.Hour} {
		for _, by := range [][]string{{"merchant"}, nil} {
			q := tsstore.Query{Metric: "views", From: base - minute, To: base + 301*minute, Step: step, GroupBy: by}
			want, _ := oracle.Query(context.Background(), q)
			got, err := s.Query(context.Background(), q)
			if err != nil {
				t.Fatal(err)
			}
			if d := storetest.Diff(want, got); d != "" {
				t.Errorf("step %v, group by %q after reopen (-want +got):\n%s", step, by, d)
			}
		}
	}
	if d := cmp.Diff(allCells(t, oracle, "views"), allCells(t, s, "views"), storetest.CellOrder); d != "" {
		t.Errorf("cells after reopen (-want +got):\n%s", d)
	}
}

// TestTooOld checks that a cell older than the out-of-order window fails
// with a clear error, and that nothing of its batch is stored.
func TestTooOld(t *testing.T) {
	s, err := promtsdb.Open(t.TempDir(), &promtsdb.Options{OutOfOrderWindow: 2 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ls := mkLabels(t, "merchant", "m1")
	write(t, s, mkCell("views", ls, base+10*60*minute, 0, 1))
	// Within the window: fine.
	write(t, s, mkCell("views", ls, base+9*60*minute, 0, 1))
	err = s.Write(context.Background(), []tsstore.Cell{
		mkCell("views", ls, base+9*60*minute+minute, 0, 1),
		mkCell("views", mkLabels(t, "merchant", "m2"), base, 0, 1),
	})
	if !errors.Is(err, tsstore.ErrInvalid) || !errors.Is(err, promtsdb.ErrTooOld) {
		t.Fatalf("cell 10 h behind the newest with a 2 h window: got %v, want ErrInvalid and ErrTooOld", err)
	}
	if !strings.Contains(err.Error(), "cell 1 views{merchant=\"m2\"}") {
		t.Errorf("error %q does not name the cell", err)
	}
	if got := allCells(t, s, "views"); len(got) != 2 {
		t.Errorf("after the rejected batch: %d cells, want the 2 written before", len(got))
	}
}

func TestOpenInvalid(t *testing.T) {
	for _, o := range []promtsdb.Options{{CellWidth: time.Microsecond}, {OutOfOrderWindow: -time.Hour}, {Retention: -time.Hour}} {
		if s, err := promtsdb.Open(t.TempDir(), &o); !errors.Is(err, tsstore.ErrInvalid) {
			if s != nil {
				s.Close()
			}
			t.Errorf("Open(%+v): got %v, want ErrInvalid", o, err)
		}
	}
}

// TestCloseDirectoryGone deletes a Store's directory under it (a lost
// disk): Close must fail with ErrUnavailable rather than crash the
// process, although tsdb panics when it cannot write the head's full
// chunks (more than 120 samples of a series make one).
func TestCloseDirectoryGone(t *testing.T) {
	dir := t.TempDir()
	s, err := promtsdb.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	ls := mkLabels(t, "merchant", "m1")
	for m := range int64(150) { // 2.5 h: two head chunks, no compaction yet
		write(t, s, mkCell("orders", ls, base+m*minute, 0, float64(m)))
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); !errors.Is(err, tsstore.ErrUnavailable) {
		t.Fatalf("Close with the directory gone = %v, want ErrUnavailable", err)
	}
}

// TestLateCellsOfManySeries rewrites late cells of many series of one
// metric, in a store that knows the series and after a reopen (when it
// does not): identical rewrites are no-ops, another aggregate is
// ErrConflict, and a series with one more label, or another writer's, at
// the same time, is not taken for one of them.
func TestLateCellsOfManySeries(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	at := func(min int64) int64 { return base + min*minute }
	const n = 200
	series := make([]tsstore.Labels, n)
	var stored []tsstore.Cell
	for m := range series {
		series[m] = mkLabels(t, "merchant", fmt.Sprint("m", m))
		for i := int64(0); i < 3; i++ {
			stored = append(stored, mkCell("orders", series[m], at(i), 0, float64(m)+float64(i)/10))
		}
	}
	// Look-alikes: a superset of a series' labels, another writer's.
	extra := mkCell("orders", mkLabels(t, "merchant", "m7", "plan", "pro"), at(1), 0, 99)
	other := mkCell("orders", series[8], at(1), 0, 98)
	other.Writer = "w2"
	stored = append(stored, extra, other)
	write(t, s, stored...)
	for _, reopen := range []bool{false, true} {
		if reopen {
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s = open(t, dir)
		}
		// Every series' minute 1 again (identical), and a new late cell.
		var late []tsstore.Cell
		for m := range series {
			late = append(late, stored[3*m+1], mkCell("orders", series[m], at(1), uint32(2+btoi(reopen)), float64(m)))
		}
		write(t, s, late...)
		want := append(slices.Clone(stored), late...)
		if d := cmp.Diff(dedupe(want), allCells(t, s, "orders"), storetest.CellOrder); d != "" {
			t.Errorf("reopened %v: late rewrites (-want +got):\n%s", reopen, d)
		}
		stored = dedupe(want)
		// One cell of the look-alikes' identities with another aggregate.
		for _, i := range []int{2 * 7, 2 * 8, -1} {
			batch := append(slices.Clone(late), other) // another writer's, identical
			if i < 0 {
				i = len(batch) - 1
			}
			batch[i].Sum++
			c := batch[i]
			// Found by the read back ("is stored as"), not left to the
			// TSDB, which takes some such samples without a word.
			if err := s.Write(context.Background(), batch); !errors.Is(err, tsstore.ErrConflict) || !strings.Contains(err.Error(), "is stored as") {
				t.Errorf("reopened %v: %s with another aggregate among %d late cells: got %v, want ErrConflict: is stored as", reopen, c.IDString(), len(batch), err)
			}
		}
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// dedupe returns cells without repeated identities.
func dedupe(cells []tsstore.Cell) []tsstore.Cell {
	seen := map[string]bool{}
	var out []tsstore.Cell
	for _, c := range cells {
		if id := c.IDString(); !seen[id] {
			seen[id] = true
			out = append(out, c)
		}
	}
	return out
}

// TestSeqBound checks the bound that spares a late cell its read back
// (seriesState.unstored): it covers only what the first read back after a
// reopen read, and nothing once the DB was given out by As.
func TestSeqBound(t *testing.T) {
	at := func(min int64) int64 { return base + min*minute }
	ls := mkLabels(t, "merchant", "m1")
	conflict := func(t *testing.T, s *promtsdb.Store, c tsstore.Cell) {
		t.Helper()
		c.Sum++
		if err := s.Write(context.Background(), []tsstore.Cell{c}); !errors.Is(err, tsstore.ErrConflict) || !strings.Contains(err.Error(), "is stored as") {
			t.Errorf("%s with another aggregate: got %v, want ErrConflict: is stored as", c.IDString(), err)
		}
	}
	t.Run("below the first read after a reopen", func(t *testing.T) {
		dir := t.TempDir()
		s := open(t, dir)
		early := mkCell("orders", ls, at(1), 5, 1)
		mid := mkCell("orders", ls, at(2), 1, 2)
		write(t, s, early, mid, mkCell("orders", ls, at(3), 0, 3))
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		s = open(t, dir)
		write(t, s, mid) // the first read back after the reopen starts at minute 2
		conflict(t, s, early)
	})
	t.Run("after As", func(t *testing.T) {
		s := open(t, t.TempDir())
		write(t, s, mkCell("orders", ls, at(0), 0, 1), mkCell("orders", ls, at(1), 0, 2), mkCell("orders", ls, at(2), 0, 3))
		var db *tsdb.DB
		if !s.As(&db) {
			t.Fatal("As(**tsdb.DB) = false")
		}
		// A cell of minute 1 and Seq 5, appended past the Store.
		c := mkCell("orders", ls, at(1), 5, 7)
		app := db.Appender(context.Background())
		for k, v := range []float64{float64(c.Count), c.Sum, c.Min, c.Max} {
			name := "orders" + []string{":count", ":sum", ":min", ":max"}[k]
			if _, err := app.Append(0, labels.FromStrings("__name__", name, "merchant", "m1"), c.Start+int64(c.Seq), v); err != nil {
				t.Fatal(err)
			}
		}
		if err := app.Commit(); err != nil {
			t.Fatal(err)
		}
		conflict(t, s, c)
	})
}
