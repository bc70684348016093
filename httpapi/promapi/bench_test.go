package promapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
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
// with the same range through the engine's Query, called directly
// (query-ms) and behind a handler answering JSON as the example server's
// GET /v1/metrics does (metrics-ms), over memstore and promtsdb. Three
// merchants write one order per currency and minute; the last day stays in
// the cache.
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
	eng, err := writeback.New(cache, st, &writeback.Options{FlushInterval: -1, MaxLate: 40 * 24 * time.Hour,
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
	const minutes, cached = days * 24 * 60, 45
	for m := 0; m < minutes; {
		// A day per write and flush, the last 45 minutes on their own,
		// left in the cache.
		end := min(m+24*60, minutes-cached)
		if m == minutes-cached {
			end = minutes
		}
		var ps []tsstore.Point
		for ; m < end; m++ {
			for _, merchant := range []string{"demo", "other", "third"} {
				for _, c := range []string{"EUR", "USD"} {
					ps = append(ps, pt("revenue", time.Duration(m)*time.Minute+time.Second, float64(10+m%50), "merchant", merchant, "currency", c))
				}
			}
		}
		e.write(b, ps...)
		if m < minutes {
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
	metricsSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		res, err := eng.Query(r.Context(), q)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		type point struct {
			Time  time.Time `json:"time"`
			Value float64   `json:"value"`
		}
		type series struct {
			Labels map[string]string `json:"labels"`
			Points []point           `json:"points"`
		}
		out := []series{}
		for _, s := range res.Series {
			so := series{Labels: s.Labels.Map()}
			for _, bk := range s.Buckets {
				so.Points = append(so.Points, point{tsstore.TimeOf(bk.Start), bk.Sum})
			}
			out = append(out, so)
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"series": out})
	}))
	defer metricsSrv.Close()
	metrics := func() int {
		resp, err := http.Get(metricsSrv.URL)
		if err != nil {
			b.Fatal(err)
		}
		defer resp.Body.Close()
		var body struct {
			Series []struct{ Points []json.RawMessage } `json:"series"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			b.Fatal(err)
		}
		return len(body.Series[0].Points)
	}
	if m := metrics(); m != days*24 {
		b.Fatalf("%d /v1/metrics points, want %d", m, days*24)
	}
	var took [3]time.Duration
	b.ResetTimer()
	for b.Loop() {
		for i, f := range []func() int{promql, query, metrics} {
			start := time.Now()
			f()
			took[i] += time.Since(start)
		}
	}
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) / float64(b.N) }
	b.ReportMetric(ms(took[0]), "promql-ms/op")
	b.ReportMetric(ms(took[1]), "query-ms/op")
	b.ReportMetric(ms(took[2]), "metrics-ms/op")
	b.ReportMetric(float64(took[0])/float64(took[1]), "x-query")
	b.ReportMetric(float64(took[0])/float64(took[2]), "x-metrics")
}
