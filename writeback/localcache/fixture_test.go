package localcache_test

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/writeback"
	"github.com/hourglass-io/hourglass/writeback/localcache"
)

// fixtureBatches are the batches written into testdata/v1.wal by the code
// of commit 825f65c, before batch records carried a series table: one
// generation, the open one, with a batch whose processed points are its
// raw ones, one whose processed points differ, and series without labels.
func fixtureBatches() []*writeback.Batch {
	const t0 = 1_700_000_000_000
	m1 := tsstore.Labels{{Name: "merchant", Value: "m1"}, {Name: "page", Value: "/a"}}
	m2 := tsstore.Labels{{Name: "merchant", Value: "m2"}}
	same := []tsstore.Point{
		{Metric: "views", Labels: m1, Timestamp: t0, Value: 1},
		{Metric: "ms", Labels: m1, Timestamp: t0, Value: 120.5},
		{Metric: "views", Labels: m2, Timestamp: t0 + 61_000, Value: 1},
		{Metric: "up", Timestamp: t0 - 5, Value: -3},
		{Metric: "views", Labels: tsstore.Labels{{Name: "merchant", Value: "m1"}, {Name: "page", Value: "/a"}}, Timestamp: t0 + 1, Value: 2},
	}
	raw := []tsstore.Point{
		{Metric: "ms", Labels: m2, Timestamp: t0 + 10, Value: 7.25},
		{Metric: "ms", Labels: m2, Timestamp: t0 + 20, Value: 1e300},
	}
	processed := append(raw[:len(raw):len(raw)],
		tsstore.Point{Metric: "ms_total", Labels: tsstore.Labels{{Name: "merchant", Value: "m2"}}, Timestamp: t0, Value: 1e300 + 7.25})
	return []*writeback.Batch{
		{Raw: same, Processed: same, CellWidth: time.Minute},
		{Raw: raw, Processed: processed, CellWidth: 10 * time.Second},
		{Raw: same[3:4], Processed: same[3:4], CellWidth: time.Hour},
	}
}

// writeV1Fixture writes the version 1 log testdata/v1.wal into dir as
// its open generation 1, and returns its path.
func writeV1Fixture(tb testing.TB, dir string) string {
	tb.Helper()
	b, err := os.ReadFile("testdata/v1.wal")
	if err != nil {
		tb.Fatal(err)
	}
	path := filepath.Join(dir, "00000000000000000001.wal")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		tb.Fatal(err)
	}
	return path
}

// TestVersion1Log opens a log written before batch records carried a
// series table: it replays into the cells a new log of the same batches
// makes, and reads back the same raw points.
func TestVersion1Log(t *testing.T) {
	old := t.TempDir()
	writeV1Fixture(t, old)
	oldCache, err := localcache.Open(old, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer oldCache.Close()
	newCache, err := localcache.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer newCache.Close()
	for _, b := range fixtureBatches() {
		if err := newCache.Append(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	var logs [2][][]tsstore.Point
	var cols [2][]*tsstore.Columns
	for i, c := range []*localcache.Cache{oldCache, newCache} {
		gen, ok, err := c.Seal(ctx)
		if err != nil || !ok {
			t.Fatalf("Seal: %v, %v", ok, err)
		}
		cells, err := c.SealedCells(ctx, gen)
		if err != nil {
			t.Fatal(err)
		}
		if i == 1 {
			oldCells, err := oldCache.SealedCells(ctx, 1)
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(oldCells, cells); d != "" {
				t.Errorf("cells of the version 1 log (-) and of a new one (+):\n%s", d)
			}
		}
		if err := c.SealedLog(ctx, gen, 4, func(ps []tsstore.Point) error {
			logs[i] = append(logs[i], slices.Clone(ps))
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if err := c.SealedColumns(ctx, gen, 4, func(c *tsstore.Columns) error {
			cols[i] = append(cols[i], c)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	var want [][]tsstore.Point
	var all []tsstore.Point
	for _, b := range fixtureBatches() {
		all = append(all, b.Raw...)
	}
	for len(all) > 0 {
		n := min(4, len(all))
		want, all = append(want, all[:n]), all[n:]
	}
	for i, name := range []string{"version 1", "new"} {
		if d := cmp.Diff(want, logs[i], cmpopts.EquateEmpty()); d != "" {
			t.Errorf("SealedLog of the %s log (-want +got):\n%s", name, d)
		}
		var got [][]tsstore.Point
		for _, c := range cols[i] {
			if err := c.Check(); err != nil {
				t.Errorf("SealedColumns of the %s log: %v", name, err)
			}
			got = append(got, c.AppendPoints(nil))
		}
		if d := cmp.Diff(want, got, cmpopts.EquateEmpty()); d != "" {
			t.Errorf("SealedColumns of the %s log (-want +got):\n%s", name, d)
		}
	}
}

// TestVersion1LogTakesNewRecords appends version 2 records to an open
// generation of version 1 records, as the first run after an upgrade
// does: the file replays whole, and a torn last record is cut off back to
// the records before it.
func TestVersion1LogTakesNewRecords(t *testing.T) {
	dir := t.TempDir()
	path := writeV1Fixture(t, dir)
	var want []tsstore.Point
	for _, b := range fixtureBatches() {
		want = append(want, b.Raw...)
	}
	reopen := func() *localcache.Cache {
		t.Helper()
		c, err := localcache.Open(dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	c := reopen()
	for v := range 2 {
		nb := batchOf(3, float64(v))
		if err := c.Append(ctx, nb); err != nil {
			t.Fatal(err)
		}
		want = append(want, nb.Raw...)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	sealedLog := func(c *localcache.Cache) []tsstore.Point {
		t.Helper()
		gen, _, err := c.Seal(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var got []tsstore.Point
		if err := c.SealedColumns(ctx, gen, 3, func(cols *tsstore.Columns) error {
			got = cols.AppendPoints(got)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return got
	}
	c = reopen()
	if d := cmp.Diff(want, sealedLog(c), cmpopts.EquateEmpty()); d != "" {
		t.Errorf("a version 1 log with version 2 records appended (-want +got):\n%s", d)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	// Sealing made the file a sealed generation; a torn tail is cut off
	// only in the open one, so tear a copy as generation 3.
	torn := filepath.Join(dir, "00000000000000000003.wal")
	if err := os.Rename(path, torn); err != nil {
		t.Fatal(err)
	}
	for _, name := range walFiles(t, dir) {
		if name != torn {
			if err := os.Remove(name); err != nil {
				t.Fatal(err)
			}
		}
	}
	st, err := os.Stat(torn)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(torn, st.Size()-3); err != nil {
		t.Fatal(err)
	}
	c = reopen()
	defer c.Close()
	if d := cmp.Diff(want[:len(want)-3], sealedLog(c), cmpopts.EquateEmpty()); d != "" {
		t.Errorf("after cutting a torn version 2 record off a version 1 log (-want +got):\n%s", d)
	}
}
