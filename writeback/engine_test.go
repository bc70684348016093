package writeback_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"go.uber.org/goleak"
	"pgregory.net/rapid"

	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/tsstore/archive"
	"github.com/hourglass-io/hourglass/tsstore/memstore"
	"github.com/hourglass-io/hourglass/writeback"
	"github.com/hourglass-io/hourglass/writeback/cachetest"
	"github.com/hourglass-io/hourglass/writeback/localcache"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var ctx = context.Background()

// tb is what the helpers need of a *testing.T or a *rapid.T.
type tb interface {
	Helper()
	Fatal(args ...any)
	Fatalf(format string, args ...any)
}

// start is the fake clock's start in the tests.
var start = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// env is an engine over localcache, a fault-injecting memstore and two
// in-memory archives, with a fake clock. restart stands for a crash: the
// engine stops without a successful flush and everything is reopened from
// the cache's directory.
type env struct {
	dir    string
	clock  *clock
	mem    *memstore.Store
	store  *faultStore
	arch   [2]*memArchive
	cache  *localcache.Cache
	eng    *writeback.Engine
	opts   writeback.Options
	copts  localcache.Options
	closed bool
}

func newEnv(t testing.TB, opts *writeback.Options) *env {
	return newEnvOn(t, opts, memstore.New(nil), newClock(start))
}

// newEnvOn is newEnv over a given store and clock, which several envs
// (several engines, each with its own cache) may share.
func newEnvOn(t testing.TB, opts *writeback.Options, mem *memstore.Store, clk *clock) *env {
	e := &env{dir: t.TempDir(), clock: clk, mem: mem}
	e.store = &faultStore{Store: e.mem}
	e.arch = [2]*memArchive{newMemArchive(), newMemArchive()}
	if opts != nil {
		e.opts = *opts
	}
	e.opts.Archives = []archive.Archive{e.arch[0], e.arch[1]}
	e.opts.Now = e.clock.Now
	e.opts.Logger = slog.New(slog.DiscardHandler)
	if e.opts.FlushInterval == 0 {
		e.opts.FlushInterval = -1
	}
	if e.opts.MaxLate == 0 {
		e.opts.MaxLate = 24 * time.Hour
	}
	e.copts = localcache.Options{Shards: 4}
	e.open(t)
	t.Cleanup(func() { e.close() })
	return e
}

func (e *env) open(t tb) {
	var err error
	e.cache, err = localcache.Open(e.dir, &e.copts)
	if err != nil {
		t.Fatal(err)
	}
	e.eng, err = writeback.New(e.cache, e.store, &e.opts)
	if err != nil {
		t.Fatal(err)
	}
	e.closed = false
}

func (e *env) close() {
	if e.closed {
		return
	}
	e.closed = true
	e.clock.Advance(2 * time.Second)
	e.store.failWrites.Store(false)
	_ = e.eng.Close()
	_ = e.cache.Close()
}

// crash stops the engine while the store is failing, so nothing more is
// flushed, and reopens everything.
func (e *env) crash(t tb) {
	e.store.failWrites.Store(true)
	e.clock.Advance(2 * time.Second)
	_ = e.eng.Close()
	if err := e.cache.Close(); err != nil {
		t.Fatal(err)
	}
	e.store.failWrites.Store(false)
	e.open(t)
}

func (e *env) flush(t tb) writeback.FlushReport {
	t.Helper()
	e.clock.Advance(2 * time.Second)
	rep, err := e.eng.Flush(ctx)
	if err != nil {
		t.Fatalf("Flush: %v", err)
	}
	return rep
}

func pt(metric, merchant string, ts int64, v float64) tsstore.Point {
	return tsstore.Point{Metric: metric, Labels: tsstore.Labels{{Name: "merchant", Value: merchant}}, Timestamp: ts, Value: v}
}

// oracle aggregates acknowledged processed points and answers queries
// through memstore.
type oracle struct {
	mu    sync.Mutex
	cells map[tsstore.CellID]*tsstore.Cell
	raw   []tsstore.Point
}

func newOracle() *oracle { return &oracle{cells: map[tsstore.CellID]*tsstore.Cell{}} }

func (o *oracle) add(raw, processed []tsstore.Point) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.raw = append(o.raw, raw...)
	for _, p := range processed {
		c := tsstore.Cell{Metric: p.Metric, Labels: p.Labels, Start: tsstore.CellStart(p.Timestamp, time.Minute)}
		id := c.ID()
		if o.cells[id] == nil {
			o.cells[id] = &c
		}
		o.cells[id].Add(p.Value)
	}
}

func (o *oracle) query(t tb, q tsstore.Query) *tsstore.Result {
	o.mu.Lock()
	ms := memstore.New(nil)
	var cells []tsstore.Cell
	for _, c := range o.cells {
		cells = append(cells, *c)
	}
	o.mu.Unlock()
	if err := ms.Write(ctx, cells); err != nil {
		t.Fatal(err)
	}
	r, err := ms.Query(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func diff(want, got *tsstore.Result) string { return cmp.Diff(want, got, cmpopts.EquateEmpty()) }

func TestWriteFlushQuery(t *testing.T) {
	e := newEnv(t, nil)
	now := e.clock.Millis()
	o := newOracle()
	b1 := []tsstore.Point{pt("views", "m1", now-1000, 1), pt("views", "m1", now-70_000, 2), pt("views", "m2", now, 3)}
	if err := e.eng.Write(ctx, b1); err != nil {
		t.Fatal(err)
	}
	o.add(b1, b1)
	q := tsstore.Query{Metric: "views", From: now - time.Hour.Milliseconds(), To: now + 60_000, Step: time.Minute}
	check := func(when string) {
		t.Helper()
		got, err := e.eng.Query(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if d := diff(o.query(t, q), got); d != "" {
			t.Errorf("%s (-oracle +engine):\n%s", when, d)
		}
	}
	check("from the cache only")
	rep := e.flush(t)
	if len(rep.Committed) != 1 || rep.Cells != 3 || rep.Points != 3 || rep.Segments != 2 {
		t.Errorf("flush report %+v: want 1 generation, 3 cells, 3 points, 1 segment per archive", rep)
	}
	check("from the store only")
	// A late point for a flushed cell becomes the next partial.
	b2 := []tsstore.Point{pt("views", "m1", now-1000, 10)}
	if err := e.eng.Write(ctx, b2); err != nil {
		t.Fatal(err)
	}
	o.add(b2, b2)
	check("cache and store")
	e.flush(t)
	check("after the second flush")
	cells, err := e.mem.Cells(ctx, tsstore.Selector{Metric: "views", From: 0, To: tsstore.MaxTimestamp - 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(cells) != 4 {
		t.Errorf("the store holds %d cells, want 4 (one late partial)", len(cells))
	}
	for i, a := range e.arch {
		if got := len(a.points()); got != 4 {
			t.Errorf("archive %d holds %d points, want 4", i, got)
		}
	}
	if st := e.eng.Stats(); st.CachePoints != 0 || st.PointsWritten != 4 || st.Flushes != 2 || st.CellsFlushed != 4 {
		t.Errorf("Stats = %+v", st)
	}
}

func TestInvalidBatchKeepsNothing(t *testing.T) {
	e := newEnv(t, nil)
	now := e.clock.Millis()
	good := pt("views", "m1", now, 1)
	for _, tc := range []struct {
		name, want string
		bad        tsstore.Point
	}{
		{"NaN", "not a finite number", pt("views", "m1", now, math.NaN())},
		{"bad metric", "metric name", pt("vi ews", "m1", now, 1)},
		{"empty label value", "empty value", pt("views", "", now, 1)},
		{"too old", "in the past", pt("views", "m1", now-25*time.Hour.Milliseconds(), 1)},
		{"too far ahead", "in the future", pt("views", "m1", now+2*time.Hour.Milliseconds(), 1)},
	} {
		err := e.eng.Write(ctx, []tsstore.Point{good, tc.bad})
		if !errors.Is(err, tsstore.ErrInvalid) || !strings.Contains(err.Error(), "point 1") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Write = %v; want ErrInvalid naming point 1 and saying %q", tc.name, err, tc.want)
		}
	}
	if st := e.eng.Stats(); st.CachePoints != 0 || st.Rejected != 5 {
		t.Errorf("after rejected batches: %+v; want nothing cached, 5 rejected", st)
	}
}

// TestInvalidSharedSeries: points that share a labels slice (as a line
// protocol parser's interned series do) have their series validated once,
// but every point's metric name and scalars still are.
func TestInvalidSharedSeries(t *testing.T) {
	e := newEnv(t, nil)
	now := e.clock.Millis()
	a := tsstore.Labels{{Name: "merchant", Value: "m1"}}
	b := tsstore.Labels{{Name: "merchant", Value: "m2"}}
	p := func(metric string, ls tsstore.Labels, v float64) tsstore.Point {
		return tsstore.Point{Metric: metric, Labels: ls, Timestamp: now, Value: v}
	}
	for _, tc := range []struct {
		name, want string
		batch      []tsstore.Point
	}{
		{"bad metric, same series", "point 2: metric name", []tsstore.Point{p("x", a, 1), p("y", a, 1), p("z z", a, 1)}},
		{"bad metric, series seen before", "point 3: metric name", []tsstore.Point{p("x", a, 1), p("x", b, 1), p("y", a, 1), p("z z", b, 1)}},
		{"NaN, same series", "point 1: views{merchant=\"m1\"}: value NaN", []tsstore.Point{p("views", a, 1), p("views", a, math.NaN())}},
		{"bad label, a new slice", "point 1: metric views", []tsstore.Point{p("views", a, 1), p("views", tsstore.Labels{{Name: "merchant", Value: ""}}, 1)}},
	} {
		err := e.eng.Write(ctx, tc.batch)
		if !errors.Is(err, tsstore.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Write = %v; want ErrInvalid saying %q", tc.name, err, tc.want)
		}
	}
	if st := e.eng.Stats(); st.CachePoints != 0 {
		t.Errorf("after rejected batches: %d points cached, want 0", st.CachePoints)
	}
}

func TestProcessorErrorsKeepNothing(t *testing.T) {
	proc := tsstore.ProcessorFunc{V: "strict/1", F: func(dst []tsstore.Point, p tsstore.Point) ([]tsstore.Point, error) {
		if p.Value < 0 {
			return dst, tsstore.Errorf(tsstore.ErrInvalid, "negative amount %v", p.Value)
		}
		return append(dst, p), nil
	}}
	e := newEnv(t, &writeback.Options{Processor: proc})
	now := e.clock.Millis()
	err := e.eng.Write(ctx, []tsstore.Point{pt("order", "m1", now, 5), pt("order", "m1", now, -1)})
	if !errors.Is(err, tsstore.ErrInvalid) || !strings.Contains(err.Error(), "point 1") || !strings.Contains(err.Error(), "strict/1") {
		t.Errorf("Write = %v; want ErrInvalid naming point 1 and the processor", err)
	}
	if st := e.eng.Stats(); st.CachePoints != 0 {
		t.Errorf("a batch rejected by the processor left %d points", st.CachePoints)
	}
}

func TestStoreDownBackPressureAndDrain(t *testing.T) {
	e := newEnv(t, &writeback.Options{MaxCacheBytes: 20_000, MaxLate: 10 * time.Minute})
	e.store.failWrites.Store(true)
	now := e.clock.Millis()
	o := newOracle()
	var refused error
	for i := 0; i < 1000 && refused == nil; i++ {
		b := []tsstore.Point{pt("views", fmt.Sprintf("m%d", i), now, 1)}
		if err := e.eng.Write(ctx, b); err != nil {
			refused = err
			break
		}
		o.add(b, b)
		if i%50 == 0 {
			e.clock.Advance(2 * time.Second)
			if _, err := e.eng.Flush(ctx); !errors.Is(err, tsstore.ErrUnavailable) {
				t.Fatalf("Flush with the store down: %v, want ErrUnavailable", err)
			}
		}
	}
	if !errors.Is(refused, tsstore.ErrBackPressure) {
		t.Fatalf("writes with the store down were never refused: %v", refused)
	}
	// The first failed flush sealed a generation; the flushes after it
	// retry it without sealing more (the writes wait in the open one).
	st := e.eng.Stats()
	if st.SealedGenerations != 1 || st.BackPressure == 0 {
		t.Errorf("Stats = %+v; want one sealed generation waiting and back-pressure counted", st)
	}
	e.store.failWrites.Store(false)
	e.flush(t) // the flush loop may have drained some of it already
	if st := e.eng.Stats(); st.SealedGenerations != 0 || st.CachePoints != 0 {
		t.Errorf("after the recovery flush: %+v, want the whole backlog drained", st)
	}
	q := tsstore.Query{Metric: "views", From: now - 60_000, To: now + 60_000, Step: time.Minute, GroupBy: []string{}}
	got, err := e.mem.Query(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	if d := diff(o.query(t, q), got); d != "" {
		t.Errorf("after the drain the store differs from the oracle (-oracle +store):\n%s", d)
	}
	if err := e.eng.Write(ctx, []tsstore.Point{pt("views", "m1", now, 1)}); err != nil {
		t.Errorf("write after the drain: %v", err)
	}
}

// TestQueryWhileFlushing queries while a flush has written a cell to the
// store but not yet committed it: the cell must count once.
func TestQueryWhileFlushing(t *testing.T) {
	e := newEnv(t, &writeback.Options{FlushChunk: 1})
	now := e.clock.Millis()
	o := newOracle()
	var b []tsstore.Point
	for i := 0; i < 5; i++ {
		b = append(b, pt("views", "m1", now-int64(i)*60_000, float64(i+1)))
	}
	if err := e.eng.Write(ctx, b); err != nil {
		t.Fatal(err)
	}
	o.add(b, b)
	q := tsstore.Query{Metric: "views", From: now - time.Hour.Milliseconds(), To: now + 60_000, Step: 5 * time.Minute}
	want := o.query(t, q)
	var checked atomic.Int64
	e.store.beforeWrite = func() {
		// Runs before each one-cell chunk: earlier cells are in the store
		// and still in the cache.
		got, err := e.eng.Query(ctx, q)
		if err != nil {
			t.Error(err)
			return
		}
		if d := diff(want, got); d != "" {
			t.Errorf("query during a flush after %d cells (-oracle +engine):\n%s", checked.Load(), d)
		}
		checked.Add(1)
	}
	e.flush(t)
	e.store.beforeWrite = nil
	if checked.Load() != 5 {
		t.Errorf("checked %d times, want 5", checked.Load())
	}
}

// TestQueryAcrossAFlushOfTheOpenGeneration flushes the open generation
// between the query's read of the cache and its read of the store: the
// cells it read unsealed are now in the store too and must count once.
func TestQueryAcrossAFlushOfTheOpenGeneration(t *testing.T) {
	e := newEnv(t, nil)
	now := e.clock.Millis()
	o := newOracle()
	b := []tsstore.Point{pt("views", "m1", now, 1), pt("views", "m1", now-60_000, 2)}
	if err := e.eng.Write(ctx, b); err != nil {
		t.Fatal(err)
	}
	o.add(b, b)
	q := tsstore.Query{Metric: "views", From: now - time.Hour.Milliseconds(), To: now + 60_000, Step: time.Hour}
	flushed := false
	e.store.beforeCells = func() {
		if !flushed {
			flushed = true
			e.flush(t)
		}
	}
	got, err := e.eng.Query(ctx, q)
	e.store.beforeCells = nil
	if err != nil {
		t.Fatal(err)
	}
	if !flushed {
		t.Fatal("the query did not read the store's cells")
	}
	if d := diff(o.query(t, q), got); d != "" {
		t.Errorf("(-oracle +engine):\n%s", d)
	}
}

func TestBudgetSplitsFlush(t *testing.T) {
	var reports []writeback.FlushReport
	var mu sync.Mutex
	e := newEnv(t, &writeback.Options{FlushChunk: 10, FlushBudget: 30 * time.Millisecond, OnFlush: func(r writeback.FlushReport) {
		mu.Lock()
		reports = append(reports, r)
		mu.Unlock()
	}})
	e.store.beforeWrite = func() { time.Sleep(5 * time.Millisecond) }
	now := e.clock.Millis()
	var b []tsstore.Point
	for i := 0; i < 200; i++ {
		b = append(b, pt("views", fmt.Sprintf("m%d", i), now-int64(i%30)*60_000, 1))
	}
	if err := e.eng.Write(ctx, b); err != nil {
		t.Fatal(err)
	}
	rep := e.flush(t)
	if !rep.Overrun || rep.RemainingCells == 0 || rep.Cells == 0 || len(rep.Committed) != 0 {
		t.Fatalf("flush of 20 chunks at 5 ms within 30 ms: %+v; want an overrun with cells written and some remaining", rep)
	}
	// The oldest cells went first.
	cells, err := e.mem.Cells(ctx, tsstore.Selector{Metric: "views", From: 0, To: tsstore.MaxTimestamp - 1})
	if err != nil {
		t.Fatal(err)
	}
	oldest := now - 29*60_000
	oldest = oldest - oldest%60_000
	if !slices.ContainsFunc(cells, func(c tsstore.Cell) bool { return c.Start == oldest }) {
		t.Errorf("the split flush did not write the oldest cells first")
	}
	for i := 0; i < 50 && e.eng.Stats().CachePoints > 0; i++ {
		e.flush(t)
	}
	if st := e.eng.Stats(); st.CachePoints != 0 || st.BudgetOverruns == 0 {
		t.Errorf("after continuing: %+v; want an empty cache and the overruns counted", st)
	}
	got, err := e.mem.Query(ctx, tsstore.Query{Metric: "views", From: 0, To: tsstore.MaxTimestamp - 1, Step: 100 * 365 * 24 * time.Hour, GroupBy: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Series) != 1 || got.Series[0].Buckets[0].Count != 200 {
		t.Errorf("store after the split flush: %+v, want 200 points once", got)
	}
}

func TestCloseFlushes(t *testing.T) {
	e := newEnv(t, nil)
	now := e.clock.Millis()
	if err := e.eng.Write(ctx, []tsstore.Point{pt("views", "m1", now, 1)}); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(2 * time.Second)
	if err := e.eng.Close(); err != nil {
		t.Fatal(err)
	}
	if n := e.mem.Len(); n != 1 {
		t.Errorf("after Close the store holds %d cells, want 1", n)
	}
	if err := e.eng.Write(ctx, []tsstore.Point{pt("views", "m1", now, 1)}); !errors.Is(err, tsstore.ErrClosed) {
		t.Errorf("Write after Close: %v, want ErrClosed", err)
	}
}

// TestInvariant is the write-back invariant as a property: under random
// writes, flushes with injected store and archive failures (including
// half-written batches), crashes and restarts, a query never misses an
// acknowledged point and never counts one twice; at the end the store
// equals the oracle and every archive holds every raw point exactly once.
func TestInvariant(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		e := newEnv(t, &writeback.Options{Processor: cachetest.OrderProcessor, FlushChunk: 3, SegmentPoints: 7})
		defer e.close()
		o := newOracle()
		merchants := []string{"m1", "m2", "m3"}
		metrics := []string{"orders", "revenue", "views"}
		for step := rapid.IntRange(1, 40).Draw(rt, "steps"); step > 0; step-- {
			switch rapid.IntRange(0, 9).Draw(rt, "action") {
			case 0, 1, 2, 3: // write
				now := e.clock.Millis()
				var b []tsstore.Point
				for i := rapid.IntRange(1, 8).Draw(rt, "n"); i > 0; i-- {
					b = append(b, pt(rapid.SampledFrom([]string{"order", "views"}).Draw(rt, "metric"),
						rapid.SampledFrom(merchants).Draw(rt, "merchant"),
						now-rapid.Int64Range(0, 50*60_000).Draw(rt, "age"),
						float64(rapid.IntRange(0, 100).Draw(rt, "v"))))
				}
				invalid := rapid.IntRange(0, 9).Draw(rt, "invalid") == 0
				if invalid {
					b[len(b)-1].Value = math.Inf(1)
				}
				err := e.eng.Write(ctx, b)
				if invalid {
					if !errors.Is(err, tsstore.ErrInvalid) {
						rt.Fatalf("invalid batch: %v", err)
					}
					break
				}
				if err != nil {
					rt.Fatalf("Write: %v", err)
				}
				var processed []tsstore.Point
				for _, p := range b {
					processed, _ = cachetest.OrderProcessor.Process(processed, p)
				}
				o.add(b, processed)
			case 4: // advance the clock
				e.clock.Advance(time.Duration(rapid.IntRange(0, 120).Draw(rt, "secs")) * time.Second)
			case 5, 6: // flush, maybe failing
				fault := rapid.IntRange(0, 3).Draw(rt, "fault")
				e.store.failWrites.Store(fault == 1 || fault == 2)
				e.store.halfWrites.Store(fault == 2)
				e.arch[1].fail.Store(fault == 3)
				e.clock.Advance(2 * time.Second)
				// With a fault the flush may still succeed: what failed
				// before may already be done (its progress is kept).
				if _, err := e.eng.Flush(ctx); fault == 0 && err != nil {
					rt.Fatalf("Flush: %v", err)
				}
				e.store.failWrites.Store(false)
				e.store.halfWrites.Store(false)
				e.arch[1].fail.Store(false)
			case 7: // crash and restart
				e.crash(rt)
			default: // query
				now := e.clock.Millis()
				from := now - rapid.Int64Range(0, 120).Draw(rt, "from")*60_000 - rapid.Int64Range(0, 1).Draw(rt, "off")
				q := tsstore.Query{
					Metric: rapid.SampledFrom(metrics).Draw(rt, "qmetric"),
					From:   from,
					To:     from + rapid.Int64Range(1, 180).Draw(rt, "len")*60_000,
					Step:   time.Duration(rapid.IntRange(1, 30).Draw(rt, "step")) * time.Minute,
				}
				if rapid.Bool().Draw(rt, "group") {
					q.GroupBy = []string{"merchant"}
				}
				if rapid.Bool().Draw(rt, "match") {
					m, _ := tsstore.NewMatcher(tsstore.MatchEqual, "merchant", rapid.SampledFrom(merchants).Draw(rt, "qm"))
					q.Matchers = []tsstore.Matcher{m}
				}
				got, err := e.eng.Query(ctx, q)
				if err != nil {
					rt.Fatal(err)
				}
				if d := diff(o.query(rt, q), got); d != "" {
					rt.Fatalf("Query(%+v) (-oracle +engine):\n%s", q, d)
				}
			}
		}
		e.flush(rt)
		if st := e.eng.Stats(); st.CachePoints != 0 || st.SealedGenerations != 0 {
			rt.Fatalf("after a final flush the cache holds %+v", st)
		}
		for _, m := range metrics {
			q := tsstore.Query{Metric: m, From: 0, To: tsstore.MaxTimestamp - 1, Step: time.Minute}
			got, err := e.mem.Query(ctx, q)
			if err != nil {
				rt.Fatal(err)
			}
			if d := diff(o.query(rt, q), got); d != "" {
				rt.Fatalf("store after the run, %s (-oracle +store):\n%s", m, d)
			}
		}
		key := func(p tsstore.Point) string {
			return fmt.Sprintf("%s%s@%d=%v", p.Metric, p.Labels, p.Timestamp, p.Value)
		}
		want := map[string]int{}
		for _, p := range o.raw {
			want[key(p)]++
		}
		for i, a := range e.arch {
			got := map[string]int{}
			for _, p := range a.points() {
				got[key(p)]++
			}
			if d := cmp.Diff(want, got); d != "" {
				rt.Fatalf("archive %d does not hold every raw point exactly once (-want +got):\n%s", i, d)
			}
		}
	})
}

// TestConcurrentInvariant runs writers, flushers (with failures) and
// readers at once, on the real clock. Each writer owns a merchant; a
// reader's count for that merchant must lie between the points
// acknowledged before the query started and those sent before it ended.
func TestConcurrentInvariant(t *testing.T) {
	e := newEnv(t, &writeback.Options{FlushChunk: 5, MaxLate: time.Hour})
	e.opts.Now = time.Now
	e.close()
	e.open(t)
	const writers = 3
	var acked, sent [writers]atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	report := func(err error) {
		select {
		case errs <- err:
		default:
		}
	}
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m := fmt.Sprintf("m%d", w)
			for i := 0; i < 300; i++ {
				now := time.Now().UnixMilli()
				b := []tsstore.Point{pt("views", m, now-int64(i%5)*60_000, 1), pt("views", m, now, 1)}
				sent[w].Add(2)
				if err := e.eng.Write(ctx, b); err != nil {
					report(err)
					return
				}
				acked[w].Add(2)
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			e.store.failWrites.Store(i%3 == 1)
			e.store.halfWrites.Store(i%3 == 1)
			_, _ = e.eng.Flush(ctx)
			e.store.failWrites.Store(false)
		}
	}()
	var readers sync.WaitGroup
	for r := 0; r < 2; r++ {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for i := 0; i < 200; i++ {
				w := i % writers
				if err := countBetween(ctx, e.eng.Query, w, &acked[w], &sent[w]); err != nil {
					report(err)
					return
				}
			}
		}()
	}
	readers.Wait()
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// countBetween queries merchant m<w>'s views of the last and next hour with
// query and checks the count: at least the points acknowledged before the
// query started (acked), at most those sent before it ended (sent).
func countBetween(ctx context.Context, query func(context.Context, tsstore.Query) (*tsstore.Result, error), w int, acked, sent *atomic.Int64) error {
	m, _ := tsstore.NewMatcher(tsstore.MatchEqual, "merchant", fmt.Sprintf("m%d", w))
	lo := acked.Load()
	now := time.Now().UnixMilli()
	res, err := query(ctx, tsstore.Query{Metric: "views", Matchers: []tsstore.Matcher{m}, From: now - time.Hour.Milliseconds(), To: now + time.Hour.Milliseconds(), Step: time.Hour, GroupBy: []string{}})
	hi := sent.Load()
	if err != nil {
		return err
	}
	var n int64
	for _, s := range res.Series {
		for _, b := range s.Buckets {
			n += int64(b.Count)
		}
	}
	if n < lo || n > hi {
		return fmt.Errorf("merchant m%d: query counted %d points; %d were acknowledged before it and %d sent before it ended", w, n, lo, hi)
	}
	return nil
}

// orderStore records the cells of every Write, in order.
type orderStore struct {
	tsstore.Store
	mu    sync.Mutex
	cells []tsstore.Cell
}

func (s *orderStore) Write(ctx context.Context, cells []tsstore.Cell) error {
	s.mu.Lock()
	s.cells = append(s.cells, cells...)
	s.mu.Unlock()
	return s.Store.Write(ctx, cells)
}

// reversedCache gives its sealed cells in reverse flush order and hides
// any other capability of the cache it wraps (SealedCellLister).
type reversedCache struct{ writeback.Cache }

func (c reversedCache) SealedCells(ctx context.Context, gen uint64) ([]tsstore.Cell, error) {
	cells, err := c.Cache.SealedCells(ctx, gen)
	slices.Reverse(cells)
	return cells, err
}

// TestFlushOrder: a flush writes a generation's cells in FlushOrder,
// chunk after chunk, whether the cache lists them (localcache's
// SealedCellList) or only gives them all, in another order (SealedCells,
// which the engine sorts).
func TestFlushOrder(t *testing.T) {
	for _, lister := range []bool{true, false} {
		t.Run(fmt.Sprintf("lister=%v", lister), func(t *testing.T) {
			e := newEnv(t, &writeback.Options{FlushChunk: 3})
			_ = e.eng.Close()
			var cache writeback.Cache = e.cache
			if !lister {
				cache = reversedCache{e.cache}
			}
			if _, ok := cache.(writeback.SealedCellLister); ok != lister {
				t.Fatalf("the cache lists its cells: %v, want %v", ok, lister)
			}
			store := &orderStore{Store: e.store}
			eng, err := writeback.New(cache, store, &e.opts)
			if err != nil {
				t.Fatal(err)
			}
			e.eng = eng
			var ps []tsstore.Point
			for i := range 20 {
				// Minutes, metrics and merchants out of their order.
				ps = append(ps, pt([]string{"views", "orders"}[i%2], fmt.Sprintf("m%d", (i*7)%5), e.clock.Millis()-int64((i*3)%4)*60_000, 1))
			}
			if err := eng.Write(ctx, ps); err != nil {
				t.Fatal(err)
			}
			e.clock.Advance(2 * time.Second)
			if _, err := eng.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			if len(store.cells) == 0 || !slices.IsSortedFunc(store.cells, writeback.FlushOrder) {
				t.Fatalf("the flush wrote %d cells, not in FlushOrder: %+v", len(store.cells), store.cells)
			}
			for _, c := range store.cells {
				if c.Writer == "" {
					t.Fatalf("cell %s written without its writer", c.IDString())
				}
			}
		})
	}
}
