package writeback_test

import (
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/tsstore/archive"
	"github.com/hourglass-io/hourglass/tsstore/memstore"
	"github.com/hourglass-io/hourglass/writeback"
	"github.com/hourglass-io/hourglass/writeback/localcache"
)

// copyDir copies the files of src into a new temporary directory.
func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// TestLegacyDirectoryKeepsTheLegacyWriter opens a localcache directory
// written by the code before writer ids (a790c97; testdata/legacy-a790c97:
// generation 1 sealed, as a flush that stored its cells leaves it when
// the process dies before the commit, and generation 2 open). The replayed
// generation 1 must flush under the legacy writer "", so that the cells
// the old process stored are not stored a second time under the new id;
// generation 2 and later flush under the new id.
func TestLegacyDirectoryKeepsTheLegacyWriter(t *testing.T) {
	dir := copyDir(t, filepath.Join("testdata", "legacy-a790c97"))
	cache, err := localcache.Open(dir, &localcache.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer cache.Close()
	id, since := cache.WriterID()
	if since != 2 {
		t.Fatalf("WriterID() = %q, %d; want the open generation 2 as the first under the new id", id, since)
	}
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC).UnixMilli()
	m := func(s string) tsstore.Labels { return tsstore.Labels{{Name: "merchant", Value: s}} }
	// What the old process stored before it died: generation 1's cells,
	// writer "", Seq 1.
	gen1 := []tsstore.Cell{
		{Metric: "views", Labels: m("m1"), Start: base, Seq: 1, Agg: tsstore.Agg{Count: 2, Sum: 3, Min: 1, Max: 2}},
		{Metric: "views", Labels: m("m2"), Start: base + 60_000, Seq: 1, Agg: tsstore.Agg{Count: 1, Sum: 4, Min: 4, Max: 4}},
	}
	store := memstore.New(nil)
	if err := store.Write(ctx, gen1); err != nil {
		t.Fatal(err)
	}
	clk := newClock(time.UnixMilli(base).Add(time.Minute))
	arch := newMemArchive()
	eng, err := writeback.New(cache, store, &writeback.Options{FlushInterval: -1, Now: clk.Now, Archives: []archive.Archive{arch}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	if eng.WriterID() != id {
		t.Errorf("Engine.WriterID() = %q, want the cache's %q", eng.WriterID(), id)
	}
	if _, err := eng.Flush(ctx); err != nil {
		t.Fatalf("Flush: %v (generation 1 must be a no-op rewrite of what the old process stored)", err)
	}
	got, err := store.Cells(ctx, tsstore.Selector{Metric: "views", From: 0, To: tsstore.MaxTimestamp - 1})
	if err != nil {
		t.Fatal(err)
	}
	want := append(slices.Clone(gen1),
		tsstore.Cell{Metric: "views", Labels: m("m1"), Start: base, Writer: id, Seq: 2, Agg: tsstore.Agg{Count: 1, Sum: 8, Min: 8, Max: 8}},
		tsstore.Cell{Metric: "views", Labels: m("m3"), Start: base, Writer: id, Seq: 2, Agg: tsstore.Agg{Count: 1, Sum: 16, Min: 16, Max: 16}},
	)
	sortCells(want)
	sortCells(got)
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("store after the flush of a legacy directory (-want +got):\n%s", d)
	}
	// The archive: generation 1 under the source of its time (the host
	// name, as the old process named it), generation 2 under the writer id.
	segs, err := arch.Segments(ctx, 0, tsstore.MaxTimestamp)
	if err != nil {
		t.Fatal(err)
	}
	sources := map[uint64]string{}
	for _, sg := range segs {
		sources[sg.ID.Generation] = sg.ID.Source
	}
	if len(sources) != 2 || sources[2] != id || sources[1] == id || sources[1] == "" {
		t.Errorf("archive sources by generation: %v; want 1 under the host name, 2 under the writer id %q", sources, id)
	}
}

func sortCells(cs []tsstore.Cell) {
	slices.SortFunc(cs, func(a, b tsstore.Cell) int {
		if c := a.Labels.Compare(b.Labels); c != 0 {
			return c
		}
		if a.Start != b.Start {
			return int(a.Start - b.Start)
		}
		if a.Writer != b.Writer {
			if a.Writer < b.Writer {
				return -1
			}
			return 1
		}
		return int(a.Seq) - int(b.Seq)
	})
}

// TestWriterOfGenerations checks the identity of generations past the cell
// width in ms: Writer "<id>/<n>", Seq the rest, so (Writer, Seq) never
// repeats.
func TestWriterOfGenerations(t *testing.T) {
	store := memstore.New(&memstore.Options{CellWidth: 4 * time.Millisecond})
	cache, err := localcache.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cache.Close()
	clk := newClock(start)
	eng, err := writeback.New(cache, store, &writeback.Options{FlushInterval: -1, Source: "w1", Now: clk.Now, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	ts := tsstore.Millis(start)
	ts -= ts % 4
	for range 9 {
		if err := eng.Write(ctx, []tsstore.Point{pt("views", "m1", ts, 1)}); err != nil {
			t.Fatal(err)
		}
		if _, err := eng.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	got, err := store.Cells(ctx, tsstore.Selector{Metric: "views", From: 0, To: tsstore.MaxTimestamp - 1})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, c := range got {
		ids = append(ids, c.Writer+"#"+string(rune('0'+c.Seq)))
	}
	slices.Sort(ids)
	want := []string{"w1#1", "w1#2", "w1#3", "w1/1#0", "w1/1#1", "w1/1#2", "w1/1#3", "w1/2#0", "w1/2#1"}
	if d := cmp.Diff(want, ids); d != "" {
		t.Errorf("writer#seq of 9 generations with 4 ms cells (-want +got):\n%s", d)
	}
}
