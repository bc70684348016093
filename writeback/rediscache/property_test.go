package rediscache_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"pgregory.net/rapid"

	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/tsstore/memstore"
	"github.com/hourglass-io/hourglass/writeback"
	"github.com/hourglass-io/hourglass/writeback/cachetest"
	"github.com/hourglass-io/hourglass/writeback/rediscache"
)

// TestInvariant is the write-back invariant as a property, on Redis:
// under random writes, folds, seals, flushes and restarts of the cache
// (which then folds what the last one left pending), every query equals
// the oracle built from the acknowledged points, and after a final flush
// so does the store.
func TestInvariant(t *testing.T) {
	cl := sharedClient(t)
	ctx := context.Background()
	rapid.Check(t, func(rt *rapid.T) {
		opts := &rediscache.Options{Prefix: uniquePrefix(t, cl), Shards: rapid.IntRange(1, 4).Draw(rt, "shards"), FoldInterval: time.Hour}
		store := memstore.New(nil)
		defer store.Close()
		engOpts := engineOptions()
		engOpts.Processor = cachetest.OrderProcessor
		open := func() (*rediscache.Cache, *writeback.Engine) { return openEngine(rt, cl, opts, store, engOpts) }
		cache, eng := open()
		now := time.Now()
		var o oracle
		merchants := []string{"m1", "m2", "m3"}
		for step := rapid.IntRange(1, 30).Draw(rt, "steps"); step > 0; step-- {
			switch rapid.IntRange(0, 9).Draw(rt, "action") {
			case 0, 1, 2, 3: // write
				var b []tsstore.Point
				for i := rapid.IntRange(1, 8).Draw(rt, "n"); i > 0; i-- {
					ls, _ := tsstore.NewLabels("merchant", rapid.SampledFrom(merchants).Draw(rt, "merchant"))
					b = append(b, tsstore.Point{
						Metric:    rapid.SampledFrom([]string{"order", "views"}).Draw(rt, "metric"),
						Labels:    ls,
						Timestamp: now.UnixMilli() - rapid.Int64Range(0, 50*60_000).Draw(rt, "age"),
						Value:     float64(rapid.IntRange(0, 100).Draw(rt, "v")),
					})
				}
				if err := eng.Write(ctx, b); err != nil {
					rt.Fatalf("Write: %v", err)
				}
				for _, p := range b {
					ps, _ := cachetest.OrderProcessor.Process(nil, p)
					o.add(ps...)
				}
			case 4: // fold now
				if err := cache.Fold(ctx); err != nil {
					rt.Fatalf("Fold: %v", err)
				}
			case 5: // seal without a flush
				if _, _, err := cache.Seal(ctx); err != nil {
					rt.Fatalf("Seal: %v", err)
				}
			case 6: // flush
				if _, err := eng.Flush(ctx); err != nil {
					rt.Fatalf("Flush: %v", err)
				}
			case 7: // the process dies: what is pending stays in Redis
				_ = cache.Close()
				_ = eng.Close() // its final flush fails over the closed cache
				cache, eng = open()
			default: // query
				for _, metric := range []string{"orders", "revenue", "views"} {
					q := tsstore.Query{Metric: metric, From: now.Add(-2 * time.Hour).Truncate(time.Minute).UnixMilli(), To: now.Add(time.Hour).UnixMilli(), Step: time.Duration(rapid.IntRange(1, 30).Draw(rt, "step")) * time.Minute}
					if rapid.Bool().Draw(rt, "group") {
						q.GroupBy = []string{"merchant"}
					}
					if rapid.Bool().Draw(rt, "match") {
						m, _ := tsstore.NewMatcher(tsstore.MatchEqual, "merchant", rapid.SampledFrom(merchants).Draw(rt, "qm"))
						q.Matchers = []tsstore.Matcher{m}
					}
					got, err := eng.Query(ctx, q)
					if err != nil {
						rt.Fatal(err)
					}
					if d := cmp.Diff(o.query(q, time.Minute), got, cmpopts.EquateEmpty()); d != "" {
						rt.Fatalf("Query(%+v) (-oracle +engine):\n%s", q, d)
					}
				}
			}
		}
		if err := eng.Close(); err != nil {
			rt.Fatalf("final flush: %v", err)
		}
		if st := cache.Stats(); st.Points != 0 || st.Cells != 0 || st.Sealed != 0 {
			rt.Fatalf("cache stats after the final flush: %+v", st)
		}
		if err := cache.Close(); err != nil {
			rt.Fatal(err)
		}
		for _, metric := range []string{"orders", "revenue", "views"} {
			q := tsstore.Query{Metric: metric, From: 0, To: tsstore.MaxTimestamp - 1, Step: time.Minute}
			got, err := store.Query(ctx, q)
			if err != nil {
				rt.Fatal(err)
			}
			if d := cmp.Diff(o.query(q, time.Minute), got, cmpopts.EquateEmpty()); d != "" {
				rt.Fatalf("store after the run, %s (-oracle +store):\n%s", metric, d)
			}
		}
	})
}
