package influx_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/hourglass-io/hourglass/internal/servertest"
	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/tsstore/influx"
	"github.com/hourglass-io/hourglass/tsstore/storetest"
)

// queryCounter fronts the test server with a proxy that counts /query
// requests (the conflict check's reads); everything reaches the real
// server.
type queryCounter struct {
	p       *v2Proxy
	db      string
	queries atomic.Int64
}

func newQueryCounter(t *testing.T) *queryCounter {
	u := servertest.InfluxURL(t)
	qc := &queryCounter{p: newV2Proxy(t, u), db: newDatabase(t, u)}
	qc.p.setFault(func(_ http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path == "/query" {
			qc.queries.Add(1)
		}
		return false
	})
	return qc
}

// open opens a Store on the counter's database through its proxy.
func (qc *queryCounter) open(t *testing.T, maxSeries int) *influx.Store {
	t.Helper()
	s, err := influx.Open(qc.p.URL, &influx.Options{Database: qc.db, WriteAPI: influx.WriteV1, MaxTrackedSeries: maxSeries})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// write writes cells and returns Write's error and how many /query
// requests it sent.
func (qc *queryCounter) write(s *influx.Store, cells ...tsstore.Cell) (int64, error) {
	before := qc.queries.Load()
	err := s.Write(context.Background(), cells)
	return qc.queries.Load() - before, err
}

func merchant(m string) tsstore.Labels { return tsstore.Labels{{Name: "merchant", Value: m}} }

// cellAt is a cell of "orders"{merchant=m} in cell k after storetest.Base.
func cellAt(m string, k int64, v float64) tsstore.Cell {
	return tsstore.Cell{Metric: "orders", Labels: merchant(m), Start: storetest.Base + k*influx.DefaultCellWidth.Milliseconds(), Agg: tsstore.AggOf(v)}
}

// storedAgg reads the stored aggregate of cellAt(m, k, ·) with s.
func storedAgg(t *testing.T, s *influx.Store, m string, k int64) (tsstore.Agg, bool) {
	t.Helper()
	c := cellAt(m, k, 0)
	got, err := s.Cells(context.Background(), tsstore.Selector{Metric: "orders", Matchers: []tsstore.Matcher{{Type: tsstore.MatchEqual, Name: "merchant", Value: m}}, From: c.Start, To: c.Start + 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) == 0 {
		return tsstore.Agg{}, false
	}
	return got[0].Agg, true
}

// TestConflictBelowBound: once a series' bound is known, cells after it
// are written without a read, and cells at or before it are still checked.
func TestConflictBelowBound(t *testing.T) {
	qc := newQueryCounter(t)
	s := qc.open(t, 0)
	var first, second []tsstore.Cell
	for k := range int64(10) {
		first = append(first, cellAt("a", k, float64(k)))
		second = append(second, cellAt("a", 10+k, float64(10+k)))
	}
	if n, err := qc.write(s, first...); err != nil || n == 0 {
		t.Fatalf("first write: %v after %d queries; want success after reading the bound", err, n)
	}
	if n, err := qc.write(s, second...); err != nil || n != 0 {
		t.Fatalf("write after the bound: %v after %d queries; want success without a query", err, n)
	}
	for _, k := range []int64{5, 19} { // below the bound, and at it
		n, err := qc.write(s, cellAt("a", k, 100))
		if !errors.Is(err, tsstore.ErrConflict) || n == 0 {
			t.Fatalf("changed cell %d: %v after %d queries; want ErrConflict after a read", k, err, n)
		}
	}
	// A new cell after the bound with a changed one before it: nothing of
	// the batch is written.
	if _, err := qc.write(s, cellAt("a", 20, 20), cellAt("a", 3, 100)); !errors.Is(err, tsstore.ErrConflict) {
		t.Fatalf("batch with a changed cell: %v, want ErrConflict", err)
	}
	if a, ok := storedAgg(t, s, "a", 20); ok {
		t.Fatalf("cell 20 of the failed batch is stored: %+v", a)
	}
	// Identical rewrites below the bound are no-ops.
	if _, err := qc.write(s, cellAt("a", 3, 3), cellAt("a", 15, 15)); err != nil {
		t.Fatalf("identical rewrite: %v", err)
	}
	// Cell 20 of the failed batch is still new: it is written, and then a
	// change of it conflicts.
	if _, err := qc.write(s, cellAt("a", 20, 20)); err != nil {
		t.Fatal(err)
	}
	if _, err := qc.write(s, cellAt("a", 20, 21)); !errors.Is(err, tsstore.ErrConflict) {
		t.Fatalf("changed cell 20: %v, want ErrConflict", err)
	}
	for k, want := range map[int64]float64{3: 3, 5: 5, 15: 15, 19: 19, 20: 20} {
		if a, _ := storedAgg(t, s, "a", k); a != tsstore.AggOf(want) {
			t.Errorf("cell %d is stored as %+v, want %+v", k, a, tsstore.AggOf(want))
		}
	}
}

// TestConflictAfterReopen: the first write of a series by a new Store
// reads, so it detects conflicts with what an earlier Store wrote, both for
// the cells it writes and, through the bound it reads, for later ones.
func TestConflictAfterReopen(t *testing.T) {
	qc := newQueryCounter(t)
	s1 := qc.open(t, 0)
	if _, err := qc.write(s1, cellAt("a", 10, 10), cellAt("a", 20, 20)); err != nil {
		t.Fatal(err)
	}
	if err := s1.Close(); err != nil {
		t.Fatal(err)
	}

	// The first write is a changed stored cell.
	s2 := qc.open(t, 0)
	if _, err := qc.write(s2, cellAt("a", 20, 99)); !errors.Is(err, tsstore.ErrConflict) {
		t.Fatalf("first write after reopening, changed cell 20: %v, want ErrConflict", err)
	}

	// The first write is a new cell before the stored ones: the bound read
	// from it onwards is the newest stored cell, 20.
	s3 := qc.open(t, 0)
	if _, err := qc.write(s3, cellAt("a", 5, 5)); err != nil {
		t.Fatal(err)
	}
	if _, err := qc.write(s3, cellAt("a", 20, 99)); !errors.Is(err, tsstore.ErrConflict) {
		t.Fatalf("changed cell 20 after a first write at 5: %v, want ErrConflict", err)
	}
	if _, err := qc.write(s3, cellAt("a", 10, 99)); !errors.Is(err, tsstore.ErrConflict) {
		t.Fatalf("changed cell 10 after a first write at 5: %v, want ErrConflict", err)
	}
	if n, err := qc.write(s3, cellAt("a", 21, 21)); err != nil || n != 0 {
		t.Fatalf("new cell 21 after the bound: %v after %d queries; want success without a query", err, n)
	}

	// The first write is a new cell between stored ones.
	s4 := qc.open(t, 0)
	if _, err := qc.write(s4, cellAt("a", 15, 15)); err != nil {
		t.Fatal(err)
	}
	for _, k := range []int64{10, 20, 21} {
		if _, err := qc.write(s4, cellAt("a", k, 99)); !errors.Is(err, tsstore.ErrConflict) {
			t.Fatalf("changed cell %d after a first write at 15: %v, want ErrConflict", k, err)
		}
	}
	for k, want := range map[int64]float64{5: 5, 10: 10, 15: 15, 20: 20, 21: 21} {
		if a, _ := storedAgg(t, s4, "a", k); a != tsstore.AggOf(want) {
			t.Errorf("cell %d is stored as %+v, want %+v", k, a, tsstore.AggOf(want))
		}
	}
}

// TestConflictEviction: with room for about one series per lock stripe,
// bounds are evicted all the time, and every conflict is still detected;
// with tracking off, every write reads.
func TestConflictEviction(t *testing.T) {
	qc := newQueryCounter(t)
	s := qc.open(t, 1)
	const n = 200
	batch := func(k int64, v float64) []tsstore.Cell {
		var cs []tsstore.Cell
		for m := range n {
			cs = append(cs, cellAt(fmt.Sprintf("m%03d", m), k, v+float64(m)))
		}
		return cs
	}
	for k := range int64(3) {
		if _, err := qc.write(s, batch(k, float64(k*1000))...); err != nil {
			t.Fatalf("batch %d: %v", k, err)
		}
	}
	for m := range n {
		for k := range int64(3) {
			if _, err := qc.write(s, cellAt(fmt.Sprintf("m%03d", m), k, -1)); !errors.Is(err, tsstore.ErrConflict) {
				t.Fatalf("changed cell %d of m%03d: %v, want ErrConflict", k, m, err)
			}
		}
	}

	off := qc.open(t, -1)
	if _, err := qc.write(off, cellAt("x", 0, 0)); err != nil {
		t.Fatal(err)
	}
	if q, err := qc.write(off, cellAt("x", 1, 1)); err != nil || q == 0 {
		t.Fatalf("write without tracking: %v after %d queries; want a read", err, q)
	}
}
