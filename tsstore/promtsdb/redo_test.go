package promtsdb_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"

	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/tsstore/promtsdb"
	"github.com/hourglass-io/hourglass/tsstore/storetest"
)

// redoCells writes minutes 0..9 in order, then late cells (below what the
// series has stored: the TSDB takes them out of order) at minutes 2 and 5,
// for the legacy writer and another one (the redo log keeps the writer):
// late holds minute 2's two cells, then minute 5's.
func redoCells(t *testing.T) (inOrder, late []tsstore.Cell) {
	ls := mkLabels(t, "merchant", "m1")
	writers := []string{"", "w1/2"}
	for _, writer := range writers {
		for m := range int64(10) {
			c := mkCell("orders", ls, base+m*minute, 0, float64(m))
			c.Writer = writer
			inOrder = append(inOrder, c)
		}
	}
	for _, c := range []tsstore.Cell{mkCell("orders", ls, base+2*minute, 1, 20), mkCell("orders", ls, base+5*minute, 1, 50, 51)} {
		for i, writer := range writers {
			c.Writer = writer
			if i > 0 {
				c.Add(100) // another aggregate than the legacy writer's
			}
			late = append(late, c)
		}
	}
	return inOrder, late
}

// rawSamples counts the samples of orders:count in dir as the TSDB alone
// replays them (a copy, read-only).
func rawSamples(t *testing.T, dir string) int {
	t.Helper()
	cp := filepath.Join(t.TempDir(), "copy")
	if out, err := exec.Command("cp", "-a", dir, cp).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v: %s", err, out)
	}
	db, err := tsdb.OpenDBReadOnly(cp, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	q, err := db.Querier(0, tsstore.MaxTimestamp)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	set := q.Select(context.Background(), false, nil, labels.MustNewMatcher(labels.MatchEqual, "__name__", "orders:count"))
	n := 0
	for set.Next() {
		it := set.At().Iterator(nil)
		for it.Next() == chunkenc.ValFloat {
			n++
		}
	}
	return n
}

// TestRedoRestoresLostLateCells removes the TSDB's write-behind log, as
// the out-of-order samples are lost when tsdb is killed during an
// out-of-order compaction (see redo.go), and checks that Open writes the
// late cells back from the redo log.
func TestRedoRestoresLostLateCells(t *testing.T) {
	dir := t.TempDir()
	inOrder, late := redoCells(t)
	s, err := promtsdb.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	write(t, s, inOrder...)
	write(t, s, late...)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(dir, "wbl")); err != nil {
		t.Fatal(err)
	}
	if n := rawSamples(t, dir); n != len(inOrder) {
		t.Fatalf("the TSDB alone replays %d samples, want the %d in-order ones: the test no longer simulates the loss", n, len(inOrder))
	}
	s = open(t, dir)
	want := append(append([]tsstore.Cell(nil), inOrder...), late...)
	if diff := cmp.Diff(want, allCells(t, s, "orders"), storetest.CellOrder); diff != "" {
		t.Errorf("cells after reopen (-want +got):\n%s", diff)
	}
	// Replaying again (another reopen) is harmless.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, dir)
	if diff := cmp.Diff(want, allCells(t, s, "orders"), storetest.CellOrder); diff != "" {
		t.Errorf("cells after a second reopen (-want +got):\n%s", diff)
	}
}

func redoSegments(t *testing.T, dir string) []string {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "redo", "*.log"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range names {
		names[i] = filepath.Base(names[i])
	}
	return names
}

// TestRedoTruncatedAfterCompaction checks that a redo segment is deleted
// once an out-of-order compaction has put its cells in a block, and only
// then; in-order writes log nothing.
func TestRedoTruncatedAfterCompaction(t *testing.T) {
	dir := t.TempDir()
	inOrder, late := redoCells(t)
	s := open(t, dir)
	write(t, s, inOrder...)
	if got := redoSegments(t, dir); len(got) != 0 {
		t.Fatalf("in-order writes made redo segments %v", got)
	}
	write(t, s, late[:2]...)
	first := redoSegments(t, dir)
	if len(first) != 1 {
		t.Fatalf("redo segments after a late write: %v, want one", first)
	}
	var db *tsdb.DB
	if !s.As(&db) {
		t.Fatal("As(**tsdb.DB) = false")
	}
	if err := db.CompactOOOHead(context.Background()); err != nil {
		t.Fatal(err)
	}
	write(t, s, late[2:]...) // closes the first segment, deletes it, opens another
	second := redoSegments(t, dir)
	if len(second) != 1 || second[0] == first[0] {
		t.Fatalf("redo segments after a compaction and another late write: %v (before: %v), want one new", second, first)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, dir)
	want := append(append([]tsstore.Cell(nil), inOrder...), late...)
	if diff := cmp.Diff(want, allCells(t, s, "orders"), storetest.CellOrder); diff != "" {
		t.Errorf("cells after reopen (-want +got):\n%s", diff)
	}
}

// TestRedoTornRecord appends a partial record to a redo segment, as a
// crash during an append leaves it: Open ignores it.
func TestRedoTornRecord(t *testing.T) {
	dir := t.TempDir()
	inOrder, late := redoCells(t)
	s := open(t, dir)
	write(t, s, inOrder...)
	write(t, s, late...)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	segs := redoSegments(t, dir)
	if len(segs) != 1 {
		t.Fatalf("redo segments %v, want one", segs)
	}
	f, err := os.OpenFile(filepath.Join(dir, "redo", segs[0]), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte{40, 0, 0, 0, 1, 2, 3, 4, 5}); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, dir)
	want := append(append([]tsstore.Cell(nil), inOrder...), late...)
	if diff := cmp.Diff(want, allCells(t, s, "orders"), storetest.CellOrder); diff != "" {
		t.Errorf("cells after reopen (-want +got):\n%s", diff)
	}
}
