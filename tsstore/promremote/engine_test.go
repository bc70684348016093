package promremote_test

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"pgregory.net/rapid"

	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/tsstore/memstore"
	"github.com/hourglass-io/hourglass/writeback"
	"github.com/hourglass-io/hourglass/writeback/localcache"
)

var ctx = context.Background()

// oracle holds every acknowledged point as a cell of its own in a
// memstore (one Seq per point of a cell), so its queries are the exact
// aggregates of the points.
type oracle struct {
	mem  *memstore.Store
	seqs map[tsstore.CellID]uint32
}

func newOracle() *oracle {
	return &oracle{mem: memstore.New(nil), seqs: map[tsstore.CellID]uint32{}}
}

func (o *oracle) add(t fataler, ps []tsstore.Point) {
	cells := make([]tsstore.Cell, len(ps))
	for i, p := range ps {
		c := tsstore.Cell{Metric: p.Metric, Labels: p.Labels, Start: tsstore.CellStart(p.Timestamp, tsstore.DefaultCellWidth), Agg: tsstore.AggOf(p.Value)}
		id := c.ID()
		c.Seq = o.seqs[id]
		o.seqs[id]++
		cells[i] = c
	}
	if err := o.mem.Write(ctx, cells); err != nil {
		t.Fatal(err)
	}
}

type fataler interface{ Fatal(args ...any) }

func diffResults(want, got *tsstore.Result) string { return cmp.Diff(want, got, cmpopts.EquateEmpty()) }

// TestEngineInvariant runs the write-back engine over localcache and a
// store on VictoriaMetrics, on the real clock, with random writes,
// flushes, restarts and queries: every query through the engine equals the
// oracle's, and after a final flush the store alone holds every point
// once. A query right after a flush is the read-your-writes check: the
// flushed generation is gone from the cache, so its cells must be
// readable in the store already.
func TestEngineInvariant(t *testing.T) {
	openVictoria(t, nil) // skips without VictoriaMetrics before rapid starts
	rapid.Check(t, func(rt *rapid.T) {
		store := openVictoria(t, nil)
		dir := t.TempDir()
		open := func() (*localcache.Cache, *writeback.Engine) {
			cache, err := localcache.Open(filepath.Join(dir, "cache"), nil)
			if err != nil {
				rt.Fatal(err)
			}
			eng, err := writeback.New(cache, store, &writeback.Options{FlushInterval: -1, MaxLate: time.Hour, Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				rt.Fatal(err)
			}
			return cache, eng
		}
		cache, eng := open()
		defer func() {
			_ = eng.Close()
			_ = cache.Close()
		}()
		o := newOracle()
		merchants := []string{"m1", "m2", "m3"}
		metrics := []string{"orders", "views"}
		query := func(from int64) tsstore.Query {
			q := tsstore.Query{
				Metric: rapid.SampledFrom(metrics).Draw(rt, "qmetric"),
				From:   from,
				To:     from + rapid.Int64Range(1, 120).Draw(rt, "len")*60_000,
				Step:   time.Duration(rapid.IntRange(1, 30).Draw(rt, "step")) * time.Minute,
			}
			if rapid.Bool().Draw(rt, "group") {
				q.GroupBy = []string{"merchant"}
			}
			return q
		}
		check := func(what string, q tsstore.Query) {
			want, err := o.mem.Query(ctx, q)
			if err != nil {
				rt.Fatal(err)
			}
			got, err := eng.Query(ctx, q)
			if err != nil {
				rt.Fatal(err)
			}
			if d := diffResults(want, got); d != "" {
				rt.Fatalf("%s: Query(%+v) (-oracle +engine):\n%s", what, q, d)
			}
		}
		for step := rapid.IntRange(1, 25).Draw(rt, "steps"); step > 0; step-- {
			now := time.Now().UnixMilli()
			switch rapid.IntRange(0, 6).Draw(rt, "action") {
			case 0, 1, 2: // write
				var b []tsstore.Point
				for i := rapid.IntRange(1, 8).Draw(rt, "n"); i > 0; i-- {
					b = append(b, tsstore.Point{
						Metric:    rapid.SampledFrom(metrics).Draw(rt, "metric"),
						Labels:    tsstore.Labels{{Name: "merchant", Value: rapid.SampledFrom(merchants).Draw(rt, "merchant")}},
						Timestamp: now - rapid.Int64Range(0, 50*60_000).Draw(rt, "age"),
						Value:     float64(rapid.IntRange(0, 100).Draw(rt, "v")),
					})
				}
				if err := eng.Write(ctx, b); err != nil {
					rt.Fatalf("Write: %v", err)
				}
				o.add(rt, b)
			case 3: // flush, then query at once
				if _, err := eng.Flush(ctx); err != nil {
					rt.Fatalf("Flush: %v", err)
				}
				check("right after a flush", query(now-60*60_000))
			case 4: // restart (Close flushes)
				if err := eng.Close(); err != nil {
					rt.Fatal(err)
				}
				if err := cache.Close(); err != nil {
					rt.Fatal(err)
				}
				cache, eng = open()
			default:
				check("query", query(now-rapid.Int64Range(0, 90).Draw(rt, "from")*60_000-rapid.Int64Range(0, 1).Draw(rt, "off")))
			}
		}
		if _, err := eng.Flush(ctx); err != nil {
			rt.Fatal(err)
		}
		now := time.Now().UnixMilli()
		for _, m := range metrics {
			q := tsstore.Query{Metric: m, From: now - 3*60*60_000, To: now + 60*60_000, Step: time.Minute, GroupBy: []string{"merchant"}}
			want, err := o.mem.Query(ctx, q)
			if err != nil {
				rt.Fatal(err)
			}
			got, err := store.Query(ctx, q)
			if err != nil {
				rt.Fatal(err)
			}
			if d := diffResults(want, got); d != "" {
				rt.Fatalf("store after the final flush, %s (-oracle +store):\n%s", m, d)
			}
		}
	})
}
