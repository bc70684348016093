package promtsdb

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/hourglass-io/hourglass/tsstore"
)

// loggedCells returns the cells in s's redo log, in order.
func loggedCells(t *testing.T, s *Store) []tsstore.Cell {
	t.Helper()
	var got []tsstore.Cell
	if err := s.redo.replay(func(cells []tsstore.Cell) error {
		got = append(got, cells...)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return got
}

// TestRedoLogsWhatTheTSDBTakesOutOfOrder checks which cells Write logs:
// those below their series' stored samples or an earlier cell of the
// batch, and those more than half the head chunk range (1 h) behind the
// newest sample of the database (the TSDB takes them out of order
// whatever their series: here a merchant whose next cell is above its own
// last one, on the fast path, but far behind another merchant's); and no
// on-time cell.
func TestRedoLogsWhatTheTSDBTakesOutOfOrder(t *testing.T) {
	const base, minute = int64(1767225600000), int64(60_000)
	s, err := Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	cell := func(merchant string, m int64, seq uint32, v float64) tsstore.Cell {
		c := tsstore.Cell{Metric: "orders", Labels: tsstore.Labels{{Name: "merchant", Value: merchant}}, Start: base + m*minute, Seq: seq}
		c.Add(v)
		return c
	}
	w := func(cells ...tsstore.Cell) {
		t.Helper()
		if err := s.Write(context.Background(), cells); err != nil {
			t.Fatal(err)
		}
	}
	w(cell("b", 5, 0, 5))
	for m := range int64(200) {
		w(cell("a", m, 0, float64(m)))
	}
	if got := loggedCells(t, s); len(got) != 0 {
		t.Fatalf("on-time writes logged %v", got)
	}
	farBehind := cell("b", 10, 0, 10)                                     // above b's last cell, 189 minutes behind a's
	belowOwn := cell("a", 150, 1, 1)                                      // below a's newest cell, but within the hour
	inBatch := []tsstore.Cell{cell("c", 199, 0, 1), cell("c", 198, 0, 2)} // the second below the first
	onTime := cell("d", 199, 0, 3)
	w(farBehind)
	w(belowOwn)
	w(append(inBatch, onTime)...)
	want := []tsstore.Cell{farBehind, belowOwn, inBatch[1]}
	if diff := cmp.Diff(want, loggedCells(t, s)); diff != "" {
		t.Errorf("logged cells (-want +got):\n%s", diff)
	}
}
