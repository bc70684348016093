package promremote_test

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/tsstore/promremote"
	"github.com/hourglass-io/hourglass/writeback"
	"github.com/hourglass-io/hourglass/writeback/localcache"
)

// TestFlushThenQuery: a flush followed at once by a query finds every
// cell in the store (no latency-offset or buffering gap), on both engines,
// through the store alone and through the engine whose cache dropped the
// flushed generation.
func TestFlushThenQuery(t *testing.T) {
	for _, tc := range []struct {
		name string
		open func(testing.TB, *promremote.Options) *promremote.Store
	}{{"VictoriaMetrics", openVictoria}, {"Prometheus", openPrometheus}} {
		t.Run(tc.name, func(t *testing.T) {
			store := tc.open(t, nil)
			cache, err := localcache.Open(filepath.Join(t.TempDir(), "cache"), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer cache.Close()
			eng, err := writeback.New(cache, store, &writeback.Options{FlushInterval: -1, MaxLate: time.Hour, Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			defer eng.Close()
			const merchants, perMerchant = 500, 4
			now := time.Now().UnixMilli()
			var points []tsstore.Point
			for m := 0; m < merchants; m++ {
				for i := 0; i < perMerchant; i++ {
					points = append(points, tsstore.Point{Metric: "views", Labels: tsstore.Labels{{Name: "merchant", Value: fmt.Sprintf("m%03d", m)}},
						Timestamp: now - int64(i)*60_000, Value: 1})
				}
			}
			if err := eng.Write(ctx, points); err != nil {
				t.Fatal(err)
			}
			for round := 0; round < 3; round++ {
				if _, err := eng.Flush(ctx); err != nil {
					t.Fatal(err)
				}
				q := tsstore.Query{Metric: "views", From: now - time.Hour.Milliseconds(), To: now + 60_000, Step: 2 * time.Hour, GroupBy: []string{}}
				for _, r := range []struct {
					what string
					q    func() (*tsstore.Result, error)
				}{{"store", func() (*tsstore.Result, error) { return store.Query(ctx, q) }}, {"engine", func() (*tsstore.Result, error) { return eng.Query(ctx, q) }}} {
					res, err := r.q()
					if err != nil {
						t.Fatal(err)
					}
					want := uint64(merchants * perMerchant * (round + 1))
					if len(res.Series) != 1 || len(res.Series[0].Buckets) != 1 || res.Series[0].Buckets[0].Count != want {
						t.Fatalf("round %d: the %s right after the flush: %+v, want one bucket of count %d", round, r.what, res.Series, want)
					}
				}
				if err := eng.Write(ctx, points); err != nil { // the next round's generation
					t.Fatal(err)
				}
			}
		})
	}
}
