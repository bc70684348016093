package replicate_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hourglass-io/hourglass/replicate"
	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/tsstore/archive"
	"github.com/hourglass-io/hourglass/tsstore/archive/dirarchive"
	"github.com/hourglass-io/hourglass/tsstore/memstore"
	"github.com/hourglass-io/hourglass/writeback"
	"github.com/hourglass-io/hourglass/writeback/cachetest"
	"github.com/hourglass-io/hourglass/writeback/localcache"
)

// tee is the store of the write-back engine in the archive tests: every
// write acknowledged by the replicated store goes to the oracle too. When
// writer is set, every cell gets it as its Writer, standing in for an engine
// whose writer id is writer (fewer than 60000 generations) while the
// archive names the engine's own source.
type tee struct {
	*replicate.Store
	oracle tsstore.Store
	writer string
}

func (t tee) Write(ctx context.Context, cells []tsstore.Cell) error {
	if t.writer != "" {
		cells = slices.Clone(cells)
		for i := range cells {
			cells[i].Writer = t.writer
		}
	}
	if err := t.Store.Write(ctx, cells); err != nil {
		return err
	}
	return t.oracle.Write(ctx, cells)
}

// archivePipeline is a write-back engine (with cachetest.OrderProcessor)
// archiving to a dirarchive and flushing through a replicated store.
type archivePipeline struct {
	eng    *writeback.Engine
	arc    archive.Archive
	oracle *memstore.Store
	now    int64  // ms: the time the orders are placed around
	writer string // the writer of the engine's cells (see tee)
}

func newArchivePipeline(t *testing.T) *archivePipeline {
	arc, err := dirarchive.Open(filepath.Join(t.TempDir(), "archive"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = arc.Close() })
	return &archivePipeline{arc: arc, oracle: memstore.New(nil), now: time.Now().Add(-2 * time.Hour).Truncate(time.Minute).UnixMilli()}
}

// start starts the engine over s.
func (p *archivePipeline) start(t *testing.T, s *replicate.Store) {
	cache, err := localcache.Open(filepath.Join(t.TempDir(), "cache"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cache.Close() })
	p.eng, err = writeback.New(cache, tee{s, p.oracle, p.writer}, &writeback.Options{Processor: cachetest.OrderProcessor, Archives: []archive.Archive{p.arc},
		FlushInterval: -1, Source: "live", Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.eng.Close() })
}

// flush writes orders of 8 merchants, several per cell, in minutes
// [from, to) after p.now (plus one late order in minute late, when not
// negative, so that its cell gets a second partial) and flushes them: one
// generation, archived.
func (p *archivePipeline) flush(t *testing.T, from, to, late int) {
	t.Helper()
	var points []tsstore.Point
	add := func(minute, k, j int) {
		ls, err := tsstore.NewLabels("merchant", fmt.Sprintf("m%d", k))
		if err != nil {
			t.Fatal(err)
		}
		// Quarters: the sums are exact in any order.
		v := float64((minute*7+k*3+j)%40) * 0.25
		points = append(points, tsstore.Point{Metric: "order", Labels: ls, Timestamp: p.now + int64(minute)*60_000 + int64(j)*7_000 + int64(k), Value: v})
	}
	for m := from; m < to; m++ {
		for k := range 8 {
			for j := range 3 {
				add(m, k, j)
			}
		}
	}
	if late >= 0 {
		add(late, 1, 5)
	}
	if err := p.eng.Write(context.Background(), points); err != nil {
		t.Fatal(err)
	}
	if _, err := p.eng.Flush(context.Background()); err != nil {
		t.Fatalf("flush: %v", err)
	}
}

// A standby is down while the write-back engine flushes more than its
// hint budget holds: it is marked stale (on promtsdb, and on InfluxDB where
// the test server is up). With ResyncFromArchive it is
// re-synced from the archive when it returns, although the primary could
// serve, and then holds exactly the cells the flushes wrote (memstore is
// the oracle), late partials included: the cells of the legacy writer "",
// and those of an engine whose writer id is its archive Source.
func TestResyncFromArchive(t *testing.T) {
	for _, writer := range []string{"", "live"} {
		t.Run(fmt.Sprintf("writer=%q", writer), func(t *testing.T) {
			eachBackend(t, func(t *testing.T, open backend) { resyncFromArchive(t, open, writer) })
		})
	}
}

func resyncFromArchive(t *testing.T, open backend, writer string) {
	pl := newArchivePipeline(t)
	pl.writer = writer
	p, sb := newReplica(t, open, "p"), newReplica(t, open, "s")
	o := testOptions(t, replicate.AckPrimary)
	o.HintBudget = 8 << 10 // more than one flush
	o.Archive, o.Processor, o.ResyncFromArchive, o.ArchiveDelay = pl.arc, cachetest.OrderProcessor, true, -1
	s := openStore(t, p, []tsstore.Store{sb}, o)
	pl.start(t, s)

	pl.flush(t, 0, 5, -1)
	eventually(t, "standby applies the first flush", func() bool { return caughtUp(s, "r1") })
	sb.down.Store(true)
	check(t, s)
	for i := range 4 {
		pl.flush(t, 5+i*5, 10+i*5, 2+i*5) // each with a late order
	}
	if st := replicaStats(s, "r1"); !st.Stale {
		t.Fatalf("standby after 4 flushes over an 8 KiB budget: %+v, want stale", st)
	}

	sb.down.Store(false)
	check(t, s)
	eventually(t, "standby re-synced", func() bool { return caughtUp(s, "r1") })
	if st := replicaStats(s, "r1"); st.ArchiveResyncs != 1 || st.Resyncs != 0 || st.Conflicts != 0 {
		t.Fatalf("standby stats after the re-sync: %+v, want one re-sync from the archive, no conflict", st)
	}
	sameCells(t, "primary", p.inner, pl.oracle, metrics...)
	sameCells(t, "standby re-synced from the archive", sb.inner, pl.oracle, metrics...)
}

// Both standbys are down while the engine flushes more than their hint
// budgets hold, then the primary is lost for good: no replica has the
// writes the standbys miss, so when they return they are re-synced from
// the archive (the second possibly from the first, once it is done), one
// is promoted, and the replicated store goes on with every flushed cell
// (memstore is the oracle).
func TestResyncFromArchiveAllStale(t *testing.T) {
	pl := newArchivePipeline(t)
	p, s1, s2 := newReplica(t, promBackend, "p"), newReplica(t, promBackend, "s1"), newReplica(t, promBackend, "s2")
	o := testOptions(t, replicate.AckPrimary)
	o.HintBudget = 8 << 10 // more than one flush
	o.Archive, o.Processor, o.ArchiveDelay = pl.arc, cachetest.OrderProcessor, -1
	s := openStore(t, p, []tsstore.Store{s1, s2}, o)
	pl.start(t, s)

	pl.flush(t, 0, 5, -1)
	eventually(t, "standbys apply the first flush", func() bool { return caughtUp(s, "r1") && caughtUp(s, "r2") })
	s1.down.Store(true)
	s2.down.Store(true)
	check(t, s)
	for i := range 3 {
		pl.flush(t, 5+i*5, 10+i*5, 3+i*5)
	}
	for _, r := range []string{"r1", "r2"} {
		if st := replicaStats(s, r); !st.Stale {
			t.Fatalf("standby %s after 3 flushes over an 8 KiB budget: %+v, want stale", r, st)
		}
	}

	// The primary is lost, the standbys return: nobody but the archive
	// has what they miss.
	p.down.Store(true)
	s1.down.Store(false)
	s2.down.Store(false)
	check(t, s)
	eventually(t, "standbys re-synced from the archive and one promoted", func() bool {
		check(t, s)
		st := s.Stats()
		return st.Primary != "r0" && caughtUp(s, "r1") && caughtUp(s, "r2")
	})
	// The first one back is re-synced from the archive; the other may be
	// re-synced from it once it is done.
	fromArchive := uint64(0)
	for _, r := range []string{"r1", "r2"} {
		st := replicaStats(s, r)
		if st.ArchiveResyncs+st.Resyncs != 1 || st.Conflicts != 0 {
			t.Fatalf("standby %s after the re-sync: %+v, want one re-sync, no conflict", r, st)
		}
		fromArchive += st.ArchiveResyncs
	}
	if fromArchive == 0 {
		t.Fatalf("no standby was re-synced from the archive: %+v", s.Stats())
	}
	sameCells(t, "standby s1", s1.inner, pl.oracle, metrics...)
	sameCells(t, "standby s2", s2.inner, pl.oracle, metrics...)

	// The engine goes on through the new primary.
	pl.flush(t, 20, 22, 1)
	eventually(t, "the other standby applies the new flush", func() bool { return caughtUp(s, "r1") && caughtUp(s, "r2") })
	sameCells(t, "standby s1 after a flush through the new primary", s1.inner, pl.oracle, metrics...)
	sameCells(t, "standby s2 after a flush through the new primary", s2.inner, pl.oracle, metrics...)
}

// A re-sync from the archive waits until the archive can hold every
// missed write (ArchiveDelay after the newest): meanwhile the returned
// standby stays stale and is not read. The stale range (with the Seq
// values and time it needs) survives a restart, and a Store reopened
// without the delay re-syncs it from the archive.
func TestResyncFromArchiveWaits(t *testing.T) {
	pl := newArchivePipeline(t)
	p, sb := newReplica(t, promBackend, "p"), newReplica(t, promBackend, "s")
	o := testOptions(t, replicate.AckPrimary)
	o.HintBudget = 8 << 10
	o.Archive, o.Processor, o.ResyncFromArchive, o.ArchiveDelay = pl.arc, cachetest.OrderProcessor, true, time.Hour
	waits := &waitLog{}
	o.Logger = slog.New(waits)
	s, err := replicate.New(p, []tsstore.Store{sb}, o)
	if err != nil {
		t.Fatal(err)
	}
	standbyMisses(t, pl, s, sb, waits, "the archive may not hold the newest missed write")
	if st := replicaStats(s, "r1"); !st.Stale || st.ArchiveResyncs != 0 {
		t.Fatalf("standby re-synced before the archive delay: %+v", st)
	}
	p.down.Store(true)
	check(t, s)
	ctx, cancel := context.WithTimeout(replicate.WithMinSeq(context.Background(), 0), time.Second)
	defer cancel()
	if _, err := s.Cells(ctx, tsstore.Selector{Metric: "orders", From: 0, To: tsstore.MaxTimestamp}); err == nil {
		t.Fatal("a read was served with the primary down and the standby stale")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	p.down.Store(false)
	o.ArchiveDelay, o.Logger = -1, quiet
	s2 := openStore(t, p, []tsstore.Store{sb}, o)
	check(t, s2)
	eventually(t, "standby re-synced after the restart", func() bool { return caughtUp(s2, "r1") })
	if st := replicaStats(s2, "r1"); st.ArchiveResyncs != 1 {
		t.Fatalf("standby after the restart: %+v, want one re-sync from the archive", st)
	}
	sameCells(t, "standby re-synced from the archive after a restart", sb.inner, pl.oracle, metrics...)
}

// standbyMisses starts pl's engine over s, flushes once for the standby
// sb to apply, three times more while sb is down (past an 8 KiB hint
// budget: sb goes stale), brings sb back and waits until s's applier has
// tried to re-sync it from the archive and logged (into waits) that it
// waits, for a reason containing why.
func standbyMisses(t *testing.T, pl *archivePipeline, s *replicate.Store, sb *faulty, waits *waitLog, why string) {
	t.Helper()
	pl.start(t, s)
	pl.flush(t, 0, 5, -1)
	eventually(t, "standby applies the first flush", func() bool { return caughtUp(s, "r1") })
	sb.down.Store(true)
	check(t, s)
	for i := range 3 {
		pl.flush(t, 5+i*5, 10+i*5, 1+i*5)
	}
	sb.down.Store(false)
	check(t, s)
	eventually(t, "the applier tries a re-sync from the archive and waits because "+why, func() bool { return waits.saw(why) })
}

// waitLog is a slog.Handler that records the reasons of the applier's log
// lines saying that a re-sync from the archive waits.
type waitLog struct {
	mu   sync.Mutex // guards whys
	whys []string
}

func (h *waitLog) Enabled(context.Context, slog.Level) bool { return true }
func (h *waitLog) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *waitLog) WithGroup(string) slog.Handler            { return h }

func (h *waitLog) Handle(_ context.Context, r slog.Record) error {
	if r.Message != "replicate: re-sync from the archive waits" {
		return nil
	}
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "why" {
			h.mu.Lock()
			h.whys = append(h.whys, a.Value.String())
			h.mu.Unlock()
		}
		return true
	})
	return nil
}

// saw reports whether a recorded reason contains why.
func (h *waitLog) saw(why string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.ContainsFunc(h.whys, func(w string) bool { return strings.Contains(w, why) })
}

// The missed cells have a writer that names no archive source (an engine
// whose writer id is not its Source): the archive's generations of the
// same numbers are another source's, so the standby is never rebuilt from
// them; the applier looks for the writer's generations, finds none and
// waits, and the standby stays stale, and is not read, until a replica can
// serve.
func TestResyncFromArchiveOtherWriter(t *testing.T) {
	pl := newArchivePipeline(t)
	pl.writer = "elsewhere"
	p, sb := newReplica(t, promBackend, "p"), newReplica(t, promBackend, "s")
	o := testOptions(t, replicate.AckPrimary)
	o.HintBudget = 8 << 10
	o.Archive, o.Processor, o.ResyncFromArchive, o.ArchiveDelay = pl.arc, cachetest.OrderProcessor, true, -1
	waits := &waitLog{}
	o.Logger = slog.New(waits)
	s := openStore(t, p, []tsstore.Store{sb}, o)
	standbyMisses(t, pl, s, sb, waits, `of source "elsewhere"`)
	if st := replicaStats(s, "r1"); !st.Stale || st.ArchiveResyncs != 0 || st.Conflicts != 0 {
		t.Fatalf("standby with another writer's generations in the archive: %+v, want still stale", st)
	}
	sameCells(t, "primary", p.inner, pl.oracle, metrics...)
}

// New refuses options it cannot work with, with tsstore.ErrInvalid.
func TestNewRejectsBadOptions(t *testing.T) {
	arc := newArchivePipeline(t).arc
	for name, o := range map[string]*replicate.Options{
		"no options":                    nil,
		"no dir":                        {},
		"archive without processor":     {Dir: t.TempDir(), Archive: arc},
		"processor without archive":     {Dir: t.TempDir(), Processor: cachetest.OrderProcessor},
		"from the archive, without one": {Dir: t.TempDir(), ResyncFromArchive: true},
		"ack needs 2 standbys of 1":     {Dir: t.TempDir(), Ack: replicate.AckPrimaryPlus(2)},
		"a name twice":                  {Dir: t.TempDir(), Names: []string{"a", "a"}},
	} {
		p, sb := memBackend(t, "p"), memBackend(t, "s")
		if s, err := replicate.New(p, []tsstore.Store{sb}, o); !errors.Is(err, tsstore.ErrInvalid) {
			if s != nil {
				_ = s.Close()
			}
			t.Errorf("%s: New returned %v, want ErrInvalid", name, err)
		}
	}
}
