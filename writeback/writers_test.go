package writeback_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"pgregory.net/rapid"

	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/tsstore/memstore"
	"github.com/hourglass-io/hourglass/writeback"
	"github.com/hourglass-io/hourglass/writeback/cachetest"
)

// TestInvariantManyWriters runs two engines, each with its own localcache,
// over ONE store, writing overlapping merchants in the same minutes, with
// flushes (some failing) and crashes in any order. Each engine sees only
// its own cache and the store, so its queries are exact for the merchant
// only it writes; after both flushed, the store holds exactly what both
// acknowledged: no partial lost, none counted twice.
func TestInvariantManyWriters(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		mem, clk := memstore.New(nil), newClock(start)
		opts := &writeback.Options{Processor: cachetest.OrderProcessor, FlushChunk: 3}
		envs := []*env{newEnvOn(t, opts, mem, clk), newEnvOn(t, opts, mem, clk)}
		defer func() {
			for _, e := range envs {
				e.close()
			}
		}()
		if envs[0].eng.WriterID() == envs[1].eng.WriterID() {
			rt.Fatalf("two caches, one writer id %q", envs[0].eng.WriterID())
		}
		all := newOracle()
		own := []*oracle{newOracle(), newOracle()}
		shared := []string{"s1", "s2"}
		only := []string{"only0", "only1"}
		for step := rapid.IntRange(1, 40).Draw(rt, "steps"); step > 0; step-- {
			i := rapid.IntRange(0, 1).Draw(rt, "engine")
			e := envs[i]
			switch rapid.IntRange(0, 8).Draw(rt, "action") {
			case 0, 1, 2, 3: // write
				now := clk.Millis()
				var b []tsstore.Point
				for n := rapid.IntRange(1, 6).Draw(rt, "n"); n > 0; n-- {
					b = append(b, pt(rapid.SampledFrom([]string{"order", "views"}).Draw(rt, "metric"),
						rapid.SampledFrom(append(slices.Clone(shared), only[i])).Draw(rt, "merchant"),
						now-rapid.Int64Range(0, 5*60_000).Draw(rt, "age"),
						float64(rapid.IntRange(0, 100).Draw(rt, "v"))))
				}
				if err := e.eng.Write(ctx, b); err != nil {
					rt.Fatalf("Write through engine %d: %v", i, err)
				}
				var processed []tsstore.Point
				for _, p := range b {
					processed, _ = cachetest.OrderProcessor.Process(processed, p)
				}
				all.add(b, processed)
				own[i].add(b, processed)
			case 4: // advance the clock
				clk.Advance(time.Duration(rapid.IntRange(0, 90).Draw(rt, "secs")) * time.Second)
			case 5, 6: // flush, maybe failing half-way
				fault := rapid.IntRange(0, 2).Draw(rt, "fault")
				e.store.failWrites.Store(fault > 0)
				e.store.halfWrites.Store(fault == 2)
				if _, err := e.eng.Flush(ctx); fault == 0 && err != nil {
					rt.Fatalf("Flush of engine %d: %v", i, err)
				}
				e.store.failWrites.Store(false)
				e.store.halfWrites.Store(false)
			case 7: // crash and restart
				e.crash(rt)
			default: // query the merchant only this engine writes
				now := clk.Millis()
				m, _ := tsstore.NewMatcher(tsstore.MatchEqual, "merchant", only[i])
				q := tsstore.Query{
					Metric:   rapid.SampledFrom([]string{"orders", "revenue", "views"}).Draw(rt, "qmetric"),
					Matchers: []tsstore.Matcher{m},
					From:     now - rapid.Int64Range(1, 30).Draw(rt, "from")*60_000,
					To:       now + 60_000,
					Step:     time.Duration(rapid.IntRange(1, 10).Draw(rt, "step")) * time.Minute,
				}
				got, err := e.eng.Query(ctx, q)
				if err != nil {
					rt.Fatal(err)
				}
				if d := diff(own[i].query(rt, q), got); d != "" {
					rt.Fatalf("engine %d: Query(%+v) (-oracle +engine):\n%s", i, q, d)
				}
			}
		}
		for _, e := range envs {
			e.flush(rt)
		}
		for _, m := range []string{"orders", "revenue", "views"} {
			q := tsstore.Query{Metric: m, From: 0, To: tsstore.MaxTimestamp - 1, Step: time.Minute, GroupBy: []string{"merchant"}}
			got, err := mem.Query(ctx, q)
			if err != nil {
				rt.Fatal(err)
			}
			if d := diff(all.query(rt, q), got); d != "" {
				rt.Fatalf("store after both flushed, %s (-oracle +store):\n%s", m, d)
			}
			for i, e := range envs {
				got, err := e.eng.Query(ctx, q)
				if err != nil {
					rt.Fatal(err)
				}
				if d := diff(all.query(rt, q), got); d != "" {
					rt.Fatalf("engine %d after both flushed, %s (-oracle +engine):\n%s", i, m, d)
				}
			}
		}
	})
}

// TestCells checks Engine.Cells: every partial once, from the cache and
// the store merged by identity, summing per cell to the oracle's cell,
// before, during (between the chunks of) and after a flush.
func TestCells(t *testing.T) {
	e := newEnv(t, &writeback.Options{FlushChunk: 2})
	o := newOracle()
	now := e.clock.Millis()
	write := func(ps ...tsstore.Point) {
		t.Helper()
		if err := e.eng.Write(ctx, ps); err != nil {
			t.Fatal(err)
		}
		o.add(ps, ps)
	}
	sel := tsstore.Selector{Metric: "views", From: 0, To: tsstore.MaxTimestamp - 1}
	check := func(when string, partials int) {
		cs, err := e.eng.Cells(ctx, sel)
		if err != nil {
			t.Errorf("%s: Cells: %v", when, err)
			return
		}
		ids := map[tsstore.CellID]bool{}
		sum := map[tsstore.CellID]*tsstore.Cell{}
		for _, c := range cs {
			if ids[c.ID()] {
				t.Errorf("%s: Cells returned %s%s@%d writer %q seq %d twice", when, c.Metric, c.Labels, c.Start, c.Writer, c.Seq)
			}
			ids[c.ID()] = true
			if c.Writer != e.eng.WriterID() {
				t.Errorf("%s: a cell with writer %q, want %q", when, c.Writer, e.eng.WriterID())
			}
			k := tsstore.Cell{Metric: c.Metric, Labels: c.Labels, Start: c.Start}
			if sum[k.ID()] == nil {
				sum[k.ID()] = &k
			}
			sum[k.ID()].Merge(c.Agg)
		}
		if len(cs) != partials {
			t.Errorf("%s: %d partials, want %d", when, len(cs), partials)
		}
		o.mu.Lock()
		defer o.mu.Unlock()
		want := map[tsstore.CellID]tsstore.Agg{}
		for id, c := range o.cells {
			want[id] = c.Agg
		}
		got := map[tsstore.CellID]tsstore.Agg{}
		for id, c := range sum {
			got[id] = c.Agg
		}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("%s: Cells summed per cell (-oracle +engine):\n%s", when, d)
		}
	}
	for m := range 5 {
		write(pt("views", fmt.Sprintf("m%d", m), now-1000, float64(m)), pt("views", fmt.Sprintf("m%d", m), now-61_000, 1))
	}
	check("from the cache", 10)
	during := 0
	e.store.beforeWrite = func() {
		during++
		check(fmt.Sprintf("during the flush, before chunk %d", during), 10)
	}
	e.flush(t)
	e.store.beforeWrite = nil
	if during < 5 {
		t.Fatalf("the flush wrote %d chunks, want 5", during)
	}
	check("from the store", 10)
	write(pt("views", "m1", now-1000, 5), pt("views", "m9", now, 1))
	check("a late partial in the cache", 12)
	e.flush(t)
	check("after the second flush", 12)
}
