package promtsdb_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/tsstore/memstore"
	"github.com/hourglass-io/hourglass/tsstore/storetest"
)

// TestLegacyDirectory opens a directory written before cells had writers
// (testdata/legacy-a790c97, see its README: a block, the WAL, the
// write-behind log and the redo log): its cells read back as the legacy
// writer "", a new writer's partials of the same cells add up with them in
// queries, and the legacy writer's conflict checks still hold, in the
// block, the head and out of order, before and after a reopen.
func TestLegacyDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tsdb")
	if err := os.CopyFS(dir, os.DirFS(filepath.Join("testdata", "legacy-a790c97", "tsdb"))); err != nil {
		t.Fatal(err)
	}
	s := open(t, dir)
	demo := mkLabels(t, "currency", "EUR", "merchant", "demo")
	at := func(min int64) int64 { return base + min*minute }

	// What the generator wrote, all as writer "".
	var legacy []tsstore.Cell
	for _, m := range []string{"demo", "shop2"} {
		for i := int64(0); i < 240; i++ {
			legacy = append(legacy, mkCell("revenue", mkLabels(t, "currency", "EUR", "merchant", m), at(i), 1, float64(i%10)))
		}
	}
	late := mkCell("revenue", demo, at(200), 2, 100, 7)
	legacy = append(legacy, late)
	if d := cmp.Diff(legacy, allCells(t, s, "revenue"), storetest.CellOrder); d != "" {
		t.Fatalf("legacy cells (-want +got):\n%s", d)
	}

	// The same identities from a new writer: in the block (minute 3),
	// in the head (minute 239), out of order (minute 200, Seq 2).
	var fresh []tsstore.Cell
	for _, c := range []tsstore.Cell{legacy[3], legacy[239], late} {
		c.Writer = "a1b2c3d4"
		c.Add(1000)
		fresh = append(fresh, c)
	}
	write(t, s, fresh...)

	checkAll := func(t *testing.T, when string) {
		t.Helper()
		all := append(append([]tsstore.Cell(nil), legacy...), fresh...)
		oracle := memstore.New(nil)
		write(t, oracle, all...)
		q := tsstore.Query{Metric: "revenue", Matchers: []tsstore.Matcher{{Type: tsstore.MatchEqual, Name: "merchant", Value: "demo"}},
			From: at(0), To: at(240), Step: time.Hour}
		want, _ := oracle.Query(context.Background(), q)
		got, err := s.Query(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		if d := storetest.Diff(want, got); d != "" {
			t.Errorf("%s: demo's revenue, legacy and new writer summed (-want +got):\n%s", when, d)
		}
		for _, c := range append([]tsstore.Cell{legacy[3], legacy[239], late}, fresh...) {
			write(t, s, c) // identical rewrites: no-ops
			other := c
			other.Add(1)
			if err := s.Write(context.Background(), []tsstore.Cell{other}); !errors.Is(err, tsstore.ErrConflict) {
				t.Errorf("%s: writer %q rewriting %s%s@%d seq %d with another aggregate: got %v, want ErrConflict", when, c.Writer, c.Metric, c.Labels, c.Start, c.Seq, err)
			}
		}
		if d := cmp.Diff(all, allCells(t, s, "revenue"), storetest.CellOrder); d != "" {
			t.Errorf("%s: stored cells (-want +got):\n%s", when, d)
		}
	}
	checkAll(t, "after the new writer's write")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, dir)
	checkAll(t, "after a reopen")
}
