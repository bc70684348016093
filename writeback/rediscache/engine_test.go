package rediscache_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/redis/go-redis/v9"

	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/tsstore/memstore"
	"github.com/hourglass-io/hourglass/writeback"
	"github.com/hourglass-io/hourglass/writeback/rediscache"
)

// oracle keeps every acknowledged point and answers queries with
// tsstore.Aggregate, the reference bucketing.
type oracle struct{ points []tsstore.Point }

func (o *oracle) add(ps ...tsstore.Point) { o.points = append(o.points, ps...) }

func (o *oracle) query(q tsstore.Query, width time.Duration) *tsstore.Result {
	cells := make([]tsstore.Cell, 0, len(o.points))
	for _, p := range o.points {
		cells = append(cells, tsstore.Cell{Metric: p.Metric, Labels: p.Labels, Start: tsstore.CellStart(p.Timestamp, width), Agg: tsstore.AggOf(p.Value)})
	}
	return tsstore.Aggregate(&q, cells)
}

// randomBatch returns n points of mixed merchants, metrics and pages within
// the last 50 minutes of now, with integer values (so that sums are exact
// in any order).
func randomBatch(r *rand.Rand, now time.Time, n int) []tsstore.Point {
	ps := make([]tsstore.Point, n)
	for i := range ps {
		kv := []string{"merchant", fmt.Sprintf("m%d", r.IntN(5))}
		if r.IntN(3) > 0 {
			kv = append(kv, "page", fmt.Sprintf("/p%d", r.IntN(4)))
		}
		ls, _ := tsstore.NewLabels(kv...)
		ps[i] = tsstore.Point{
			Metric:    []string{"views", "orders"}[r.IntN(2)],
			Labels:    ls,
			Timestamp: now.Add(-time.Duration(r.Int64N(int64(50 * time.Minute)))).UnixMilli(),
			Value:     float64(r.IntN(100) - 20),
		}
	}
	return ps
}

func queries(now time.Time) []tsstore.Query {
	eq := func(n, v string) tsstore.Matcher { m, _ := tsstore.NewMatcher(tsstore.MatchEqual, n, v); return m }
	re := func(n, v string) tsstore.Matcher { m, _ := tsstore.NewMatcher(tsstore.MatchRegexp, n, v); return m }
	ne := func(n, v string) tsstore.Matcher { m, _ := tsstore.NewMatcher(tsstore.MatchNotEqual, n, v); return m }
	from := now.Add(-2 * time.Hour).Truncate(time.Minute).UnixMilli()
	to := now.Add(time.Hour).UnixMilli()
	return []tsstore.Query{
		{Metric: "views", From: from, To: to, Step: time.Minute},
		{Metric: "views", Matchers: []tsstore.Matcher{eq("merchant", "m1")}, From: from, To: to, Step: 5 * time.Minute},
		{Metric: "orders", Matchers: []tsstore.Matcher{re("merchant", "m[23]"), ne("page", "/p1")}, From: from, To: to, Step: 10 * time.Minute, GroupBy: []string{"page"}},
		{Metric: "orders", Matchers: []tsstore.Matcher{eq("merchant", "m4"), eq("page", "")}, From: from + int64(20*time.Minute/time.Millisecond), To: to, Step: time.Minute},
		{Metric: "views", From: from, To: to, Step: time.Hour, GroupBy: []string{}},
	}
}

func checkQueries(t *testing.T, ctx context.Context, what string, e interface {
	Query(context.Context, tsstore.Query) (*tsstore.Result, error)
}, o *oracle, now time.Time) {
	t.Helper()
	for i, q := range queries(now) {
		got, err := e.Query(ctx, q)
		if err != nil {
			t.Fatalf("%s: query %d: %v", what, i, err)
		}
		want := o.query(q, time.Minute)
		if d := cmp.Diff(want, got, cmpopts.EquateEmpty()); d != "" {
			t.Fatalf("%s: query %d %+v (-oracle +engine):\n%s", what, i, q, d)
		}
	}
}

func engineOptions() *writeback.Options {
	return &writeback.Options{FlushInterval: -1, MaxLate: time.Hour, MaxFuture: time.Hour}
}

// fataler is what openEngine needs of a *testing.T or a *rapid.T.
type fataler interface {
	Helper()
	Fatal(args ...any)
}

// openEngine opens a cache with opts on cl and an engine over it and store
// with eo (engineOptions when nil). The caller closes both.
func openEngine(t fataler, cl redis.UniversalClient, opts *rediscache.Options, store tsstore.Store, eo *writeback.Options) (*rediscache.Cache, *writeback.Engine) {
	t.Helper()
	c, err := rediscache.Open(context.Background(), cl, opts)
	if err != nil {
		t.Fatal(err)
	}
	if eo == nil {
		eo = engineOptions()
	}
	e, err := writeback.New(c, store, eo)
	if err != nil {
		t.Fatal(err)
	}
	return c, e
}

// TestEngine runs the writeback engine over rediscache and memstore: every
// query, between writes, flushes and a reopen of the cache, equals the
// oracle built from the acknowledged raw points.
func TestEngine(t *testing.T) {
	cl := sharedClient(t)
	testEngine(t, cl, uniquePrefix(t, cl))
}

// testEngine is TestEngine over any client (a single server, Sentinel,
// Cluster).
func testEngine(t *testing.T, cl redis.UniversalClient, prefix string) {
	ctx := context.Background()
	opts := &rediscache.Options{Prefix: prefix, Shards: 4}
	store := memstore.New(nil)
	defer store.Close()
	open := func() (*rediscache.Cache, *writeback.Engine) { return openEngine(t, cl, opts, store, nil) }
	cache, eng := open()
	r := rand.New(rand.NewPCG(7, 7))
	now := time.Now()
	var o oracle
	for round := 0; round < 24; round++ {
		ps := randomBatch(r, now, 1+r.IntN(60))
		if err := eng.Write(ctx, ps); err != nil {
			t.Fatalf("round %d: write: %v", round, err)
		}
		o.add(ps...)
		if round%5 == 4 {
			if _, err := eng.Flush(ctx); err != nil {
				t.Fatalf("round %d: flush: %v", round, err)
			}
		}
		if round%3 == 2 {
			checkQueries(t, ctx, fmt.Sprintf("round %d", round), eng, &o, now)
		}
	}
	// A seal without a flush, then a restart of the cache: the sealed
	// and the open generation come back.
	if _, _, err := cache.Seal(ctx); err != nil {
		t.Fatal(err)
	}
	ps := randomBatch(r, now, 40)
	if err := eng.Write(ctx, ps); err != nil {
		t.Fatal(err)
	}
	o.add(ps...)
	st := eng.Stats()
	if st.SealedGenerations != 1 || st.CachePoints == 0 {
		t.Errorf("engine stats before the restart: %+v, want 1 sealed generation and cached points", st)
	}
	// Close the cache under the engine (as a crash would leave it), then
	// open a fresh cache and engine: they must see the same.
	if err := cache.Close(); err != nil {
		t.Fatal(err)
	}
	if err := eng.Close(); err == nil {
		t.Error("the engine's final flush over a closed cache succeeded")
	}
	cache, eng = open()
	checkQueries(t, ctx, "after reopening", eng, &o, now)
	if err := eng.Close(); err != nil {
		t.Fatalf("final flush: %v", err)
	}
	if st := cache.Stats(); st.Points != 0 || st.Cells != 0 || st.Sealed != 0 {
		t.Errorf("cache stats after the final flush: %+v, want empty", st)
	}
	checkQueries(t, ctx, "the store alone", store, &o, now)
	if err := cache.Close(); err != nil {
		t.Fatal(err)
	}
	if n := keysOf(t, cl, opts.Prefix); n > 4*2+3 {
		t.Errorf("%d keys left after every generation was committed, want only fences, gens and meta", n)
	}
}

// keysOf counts the keys of prefix, on every primary of a Cluster.
func keysOf(t *testing.T, cl redis.UniversalClient, prefix string) int {
	t.Helper()
	ctx := context.Background()
	var n atomic.Int64
	count := func(ctx context.Context, c *redis.Client) error {
		iter := c.Scan(ctx, 0, "{"+prefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			n.Add(1)
		}
		return iter.Err()
	}
	var err error
	switch c := cl.(type) {
	case *redis.ClusterClient:
		err = c.ForEachMaster(ctx, count)
	case *redis.Client:
		err = count(ctx, c)
	default:
		t.Fatalf("keysOf: unknown client %T", cl)
	}
	if err != nil {
		t.Fatal(err)
	}
	return int(n.Load())
}

// TestReadsExactDuringFolds writes through the engine from several
// writers while the cache folds every millisecond and the engine flushes
// in a loop, and reads all along: every read counts every point that was
// acknowledged before it began, and none twice (at most the points whose
// writes had begun when it ended).
func TestReadsExactDuringFolds(t *testing.T) {
	ctx := context.Background()
	cl := sharedClient(t)
	store := memstore.New(nil)
	defer store.Close()
	cache, eng := openEngine(t, cl, &rediscache.Options{Prefix: uniquePrefix(t, cl), Shards: 3, FoldInterval: time.Millisecond, FoldPoints: 50}, store, nil)
	defer cache.Close()
	const writers = 3
	var acked, begun [writers]atomic.Int64
	now := time.Now()
	stop := make(chan struct{})
	errs := make(chan error, writers+2)
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ls, _ := tsstore.NewLabels("merchant", fmt.Sprintf("w%d", w))
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				ps := make([]tsstore.Point, 1+i%7)
				for j := range ps {
					ps[j] = tsstore.Point{Metric: "views", Labels: ls, Timestamp: now.Add(-time.Duration(j) * time.Minute).UnixMilli(), Value: 1}
				}
				begun[w].Add(int64(len(ps)))
				if err := eng.Write(ctx, ps); err != nil {
					errs <- err
					return
				}
				acked[w].Add(int64(len(ps)))
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := eng.Flush(ctx); err != nil {
				errs <- err
				return
			}
		}
	}()
	q := tsstore.Query{Metric: "views", From: now.Add(-time.Hour).UnixMilli(), To: now.Add(time.Hour).UnixMilli(), Step: 2 * time.Hour, GroupBy: []string{"merchant"}}
	reads := 0
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); reads++ {
		var low [writers]int64
		for w := range low {
			low[w] = acked[w].Load()
		}
		res, err := eng.Query(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		var got [writers]int64
		for _, s := range res.Series {
			var w int
			fmt.Sscanf(s.Labels.Get("merchant"), "w%d", &w)
			for _, b := range s.Buckets {
				got[w] += int64(b.Count)
			}
		}
		for w := range got {
			if high := begun[w].Load(); got[w] < low[w] || got[w] > high {
				t.Fatalf("read %d: writer %d has %d points, want between %d (acknowledged before the read) and %d (begun after it)", reads, w, got[w], low[w], high)
			}
		}
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	st := eng.Stats()
	t.Logf("%d reads, %d flushes, %d points", reads, st.Flushes, st.PointsWritten)
	if err := eng.Close(); err != nil {
		t.Fatal(err)
	}
}
