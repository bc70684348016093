package rediscache_test

import (
	"context"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"pgregory.net/rapid"

	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/tsstore/memstore"
	"github.com/hourglass-io/hourglass/writeback"
	"github.com/hourglass-io/hourglass/writeback/rediscache"
)

// TestInvariantManyWriters is writeback's two-engine property on Redis:
// two engines, each with its own prefix in one Redis, write overlapping
// merchants into one store, with flushes and restarts of either. Each
// engine's queries are exact for the merchant only it writes, each keeps
// its writer id across restarts, and after both closed (flushed) the store
// equals the oracle of everything acknowledged.
func TestInvariantManyWriters(t *testing.T) {
	cl := sharedClient(t)
	ctx := context.Background()
	rapid.Check(t, func(rt *rapid.T) {
		store := memstore.New(nil)
		defer store.Close()
		type side struct {
			opts  *rediscache.Options
			cache *rediscache.Cache
			eng   *writeback.Engine
			id    string
			own   oracle
		}
		var sides [2]*side
		for i := range sides {
			s := &side{opts: &rediscache.Options{Prefix: uniquePrefix(t, cl), Shards: 2, FoldInterval: time.Hour, Logger: slog.New(slog.DiscardHandler)}}
			s.cache, s.eng = openEngine(rt, cl, s.opts, store, nil)
			s.id = s.eng.WriterID()
			sides[i] = s
		}
		if sides[0].id == sides[1].id {
			rt.Fatalf("two prefixes, one writer id %q", sides[0].id)
		}
		var all oracle
		now := time.Now()
		shared, only := []string{"s1", "s2"}, []string{"only0", "only1"}
		for step := rapid.IntRange(1, 25).Draw(rt, "steps"); step > 0; step-- {
			i := rapid.IntRange(0, 1).Draw(rt, "engine")
			s := sides[i]
			switch rapid.IntRange(0, 6).Draw(rt, "action") {
			case 0, 1, 2: // write
				var b []tsstore.Point
				for n := rapid.IntRange(1, 5).Draw(rt, "n"); n > 0; n-- {
					ls, _ := tsstore.NewLabels("merchant", rapid.SampledFrom(append(slices.Clone(shared), only[i])).Draw(rt, "merchant"))
					b = append(b, tsstore.Point{Metric: "views", Labels: ls,
						Timestamp: now.UnixMilli() - rapid.Int64Range(0, 5*60_000).Draw(rt, "age"),
						Value:     float64(rapid.IntRange(0, 100).Draw(rt, "v"))})
				}
				if err := s.eng.Write(ctx, b); err != nil {
					rt.Fatalf("Write through engine %d: %v", i, err)
				}
				all.add(b...)
				s.own.add(b...)
			case 3: // flush
				if _, err := s.eng.Flush(ctx); err != nil {
					rt.Fatalf("Flush of engine %d: %v", i, err)
				}
			case 4: // the process dies
				_ = s.cache.Close()
				_ = s.eng.Close()
				s.cache, s.eng = openEngine(rt, cl, s.opts, store, nil)
				if id := s.eng.WriterID(); id != s.id {
					rt.Fatalf("engine %d's writer id changed across a restart: %q, was %q", i, id, s.id)
				}
			default: // query the merchant only this engine writes
				m, _ := tsstore.NewMatcher(tsstore.MatchEqual, "merchant", only[i])
				q := tsstore.Query{Metric: "views", Matchers: []tsstore.Matcher{m}, From: now.Add(-time.Hour).Truncate(time.Minute).UnixMilli(), To: now.Add(time.Hour).UnixMilli(), Step: time.Minute}
				got, err := s.eng.Query(ctx, q)
				if err != nil {
					rt.Fatal(err)
				}
				if d := cmp.Diff(s.own.query(q, time.Minute), got, cmpopts.EquateEmpty()); d != "" {
					rt.Fatalf("engine %d: Query (-oracle +engine):\n%s", i, d)
				}
			}
		}
		for i, s := range sides {
			if err := s.eng.Close(); err != nil {
				rt.Fatalf("final flush of engine %d: %v", i, err)
			}
			if err := s.cache.Close(); err != nil {
				rt.Fatal(err)
			}
		}
		q := tsstore.Query{Metric: "views", From: 0, To: tsstore.MaxTimestamp - 1, Step: time.Minute, GroupBy: []string{"merchant"}}
		got, err := store.Query(ctx, q)
		if err != nil {
			rt.Fatal(err)
		}
		if d := cmp.Diff(all.query(q, time.Minute), got, cmpopts.EquateEmpty()); d != "" {
			rt.Fatalf("store after both flushed (-oracle +store):\n%s", d)
		}
	})
}

// TestLegacyPrefixKeepsTheLegacyWriter: a prefix written without a writer
// id (its key deleted here, as the code before writer ids left it) gets one
// on the next Open; the generations it already held flush under the legacy
// writer "", the open one and later ones under the new id.
func TestLegacyPrefixKeepsTheLegacyWriter(t *testing.T) {
	cl := sharedClient(t)
	ctx := context.Background()
	opts := &rediscache.Options{Prefix: uniquePrefix(t, cl), Shards: 2, Logger: slog.New(slog.DiscardHandler)}
	store := memstore.New(nil)
	defer store.Close()
	cache, eng := openEngine(t, cl, opts, store, nil)
	now := time.Now().UnixMilli()
	write := func(eng *writeback.Engine, m string) {
		ls, _ := tsstore.NewLabels("merchant", m)
		if err := eng.Write(ctx, []tsstore.Point{{Metric: "views", Labels: ls, Timestamp: now, Value: 1}}); err != nil {
			t.Fatal(err)
		}
	}
	write(eng, "m1")
	if _, _, err := cache.Seal(ctx); err != nil {
		t.Fatal(err)
	}
	write(eng, "m2")
	_ = cache.Close()
	_ = eng.Close() // its final flush fails over the closed cache: generation 1 stays sealed
	if err := cl.Del(ctx, "{"+opts.Prefix+"}:writer").Err(); err != nil {
		t.Fatal(err)
	}
	cache, eng = openEngine(t, cl, opts, store, nil)
	defer cache.Close()
	defer eng.Close()
	id, since := cache.WriterID()
	if since != 2 {
		t.Fatalf("WriterID() = %q, %d; want the open generation 2 first under the new id", id, since)
	}
	if _, err := eng.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	cells, err := store.Cells(ctx, tsstore.Selector{Metric: "views", From: 0, To: tsstore.MaxTimestamp - 1})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, c := range cells {
		got[c.Labels.Get("merchant")] = c.Writer
	}
	if want := map[string]string{"m1": "", "m2": id}; !cmp.Equal(want, got) {
		t.Errorf("writers of the stored cells: %v, want %v", got, want)
	}
}
