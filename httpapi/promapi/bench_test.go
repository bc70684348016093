package promapi_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"

	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/tsstore/memstore"
	"github.com/hourglass-io/hourglass/tsstore/promtsdb"
	"github.com/hourglass-io/hourglass/writeback"
	"github.com/hourglass-io/hourglass/writeback/localcache"
)

// BenchmarkRevenue30Days compares, in one run, a 30-day, 1-hour-step
// sum by (currency) (sum_over_time(revenue:sum[1h])) of one merchant
// through the HTTP API (client_golang's QueryRange: PromQL, JSON, HTTP)
// with the same range through the engine's Query (what /v1/metrics runs,
// without its HTTP), over memstore and promtsdb. Three merchants write one
// order per currency and minute; the last day stays in the cache.
func BenchmarkRevenue30Days(b *testing.B) {
	for _, store := range []string{"memstore", "promtsdb"} {
		b.Run(store, func(b *testing.B) { benchRevenue(b, store) })
	}
}

func benchRevenue(b *testing.B, kind string) {
	const days = 30
	now := t0.Add(days * 24 * time.Hour)
	var st tsstore.Store = memstore.New(nil)
	if kind == "promtsdb" {
		var err error
		if st, err = promtsdb.Open(b.TempDir(), nil); err != nil {
			b.Fatal(err)
		}
	}
	cache, err := localcache.Open(b.TempDir(), &localcache.Options{Shards: 2, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	eng, err := writeback.New(cache, st, &writeback.Options{FlushInterval: -1, SealSpacing: -1, MaxLate: 40 * 24 * time.Hour,
		MaxCacheBytes: 4 << 30, Now: func() time.Time { return now }, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	e := &env{eng: eng, cache: cache}
	b.Cleanup(func() {
		if err := errors.Join(eng.Close(), cache.Close(), st.Close()); err != nil {
			b.Error(err)
		}
	})
	ctx := context.Background()
	for d := range days {
		var ps []tsstore.Point
		for m := range 24 * 60 {
			at := time.Duration(d*24*60+m) * time.Minute
			for _, merchant := range []string{"demo", "other", "third"} {
				for _, c := range []string{"EUR", "USD"} {
					ps = append(ps, pt("revenue", at+time.Second, float64(10+m%50), "merchant", merchant, "currency", c))
				}
			}
		}
		e.write(b, ps...)
		if d < days-1 {
			e.flush(b)
		}
	}
	srv := serve(b, e, nil)
	c := client(b, srv.URL, tokDemo)
	q := tsstore.Query{Metric: "revenue", Matchers: []tsstore.Matcher{{Type: tsstore.MatchEqual, Name: "merchant", Value: "demo"}},
		From: t0.UnixMilli(), To: now.UnixMilli(), Step: time.Hour, GroupBy: []string{"currency"}}
	r := v1.Range{Start: t0.Add(time.Hour - time.Millisecond), End: now.Add(-time.Millisecond), Step: time.Hour}
	promql := func() int {
		v, _, _, err := c.QueryRange(ctx, `sum by (currency) (sum_over_time(revenue:sum[1h]))`, r)
		if err != nil {
			b.Fatal(err)
		}
		return len(v.(model.Matrix)[0].Values)
	}
	query := func() int {
		res, err := eng.Query(ctx, q)
		if err != nil {
			b.Fatal(err)
		}
		return len(res.Series[0].Buckets)
	}
	if p, q := promql(), query(); p != days*24 || q != days*24 {
		b.Fatalf("%d PromQL points and %d engine buckets, want %d", p, q, days*24)
	}
	var took [2]time.Duration
	b.ResetTimer()
	for b.Loop() {
		for i, f := range []func() int{promql, query} {
			start := time.Now()
			f()
			took[i] += time.Since(start)
		}
	}
	b.ReportMetric(float64(took[0].Milliseconds())/float64(b.N), "promql-ms/op")
	b.ReportMetric(float64(took[1].Milliseconds())/float64(b.N), "query-ms/op")
	b.ReportMetric(float64(took[0])/float64(took[1]), "ratio")
}
