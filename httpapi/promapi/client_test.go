package promapi_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/api"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"

	"github.com/hourglass-io/hourglass/tsstore"
)

// bearer adds a token to every request.
type bearer struct{ token string }

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return http.DefaultTransport.RoundTrip(r)
}

func client(t testing.TB, url, token string) v1.API {
	t.Helper()
	c, err := api.NewClient(api.Config{Address: url, RoundTripper: bearer{token}})
	if err != nil {
		t.Fatal(err)
	}
	return v1.NewAPI(c)
}

// engineSeries answers q through the engine's own Query, as value per
// label set (of the group-by labels) and bucket start.
func engineSeries(t *testing.T, e *env, q tsstore.Query, value func(tsstore.Agg) float64) map[string]map[int64]float64 {
	t.Helper()
	res, err := e.eng.Query(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[int64]float64{}
	for _, s := range res.Series {
		m := map[int64]float64{}
		for _, b := range s.Buckets {
			m[b.Start] = value(b.Agg)
		}
		out[labelKey(s.Labels.Map())] = m
	}
	return out
}

// labelKey formats a label set without __name__, sorted.
func labelKey(m map[string]string) string {
	ls := make([]string, 0, len(m))
	for k, v := range m {
		if k != "__name__" {
			ls = append(ls, k+"="+v)
		}
	}
	slices.Sort(ls)
	return "{" + strings.Join(ls, ",") + "}"
}

// fromMatrix returns a matrix as value per label set and time, the time
// shifted by shift (ms).
func fromMatrix(m model.Matrix, shift int64) map[string]map[int64]float64 {
	out := map[string]map[int64]float64{}
	for _, s := range m {
		ls := map[string]string{}
		for k, v := range s.Metric {
			ls[string(k)] = string(v)
		}
		vs := map[int64]float64{}
		for _, p := range s.Values {
			vs[int64(p.Timestamp)+shift] = float64(p.Value)
		}
		out[labelKey(ls)] = vs
	}
	return out
}

func TestClientGolang(t *testing.T) {
	e := newEnv(t)
	shopData(t, e)
	srv := serve(t, e, nil)
	ctx := context.Background()
	c := client(t, srv.URL, tokDemo)
	demo := []tsstore.Matcher{{Type: tsstore.MatchEqual, Name: "merchant", Value: "demo"}}
	hour := time.Hour.Milliseconds()
	sum := func(a tsstore.Agg) float64 { return a.Sum }

	t.Run("QueryRange", func(t *testing.T) {
		// The value at t covers the cells starting in (t-1h, t]: at
		// t0+1h-1ms exactly the engine's bucket [t0, t0+1h).
		v, _, _, err := c.QueryRange(ctx, `sum by (currency) (sum_over_time(revenue:sum[1h]))`, v1.Range{
			Start: t0.Add(time.Hour - time.Millisecond), End: t0.Add(3*time.Hour - time.Millisecond), Step: time.Hour,
		})
		if err != nil {
			t.Fatal(err)
		}
		want := engineSeries(t, e, tsstore.Query{Metric: "revenue", Matchers: demo, From: t0.UnixMilli(), To: t0.Add(3 * time.Hour).UnixMilli(), Step: time.Hour, GroupBy: []string{"currency"}}, sum)
		got := fromMatrix(v.(model.Matrix), 1-hour)
		if diff := cmp.Diff(want, got); diff != "" || len(want) != 2 {
			t.Errorf("PromQL answer differs from the engine's Query (-engine +promql):\n%s", diff)
		}
	})
	t.Run("QueryRangePerCell", func(t *testing.T) {
		for _, f := range []struct {
			name  string
			value func(tsstore.Agg) float64
		}{
			{"count", func(a tsstore.Agg) float64 { return float64(a.Count) }},
			{"sum", sum},
			{"min", func(a tsstore.Agg) float64 { return a.Min }},
			{"max", func(a tsstore.Agg) float64 { return a.Max }},
		} {
			v, _, _, err := c.QueryRange(ctx, `max_over_time(revenue:`+f.name+`[1m])`, v1.Range{Start: t0, End: t0.Add(3*time.Hour - time.Minute), Step: time.Minute})
			if err != nil {
				t.Fatal(err)
			}
			want := engineSeries(t, e, tsstore.Query{Metric: "revenue", Matchers: demo, From: t0.UnixMilli(), To: t0.Add(3 * time.Hour).UnixMilli(), Step: time.Minute}, f.value)
			if diff := cmp.Diff(want, fromMatrix(v.(model.Matrix), 0)); diff != "" || len(want) != 2 {
				t.Errorf("revenue:%s differs from the engine's Query (-engine +promql):\n%s", f.name, diff)
			}
		}
	})
	t.Run("Query", func(t *testing.T) {
		v, _, _, err := c.Query(ctx, `sum(sum_over_time(orders:count[1h]))`, t0.Add(2*time.Hour-time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		vec := v.(model.Vector)
		if len(vec) != 1 || vec[0].Value != 60 {
			t.Errorf("orders in the second hour: %v, want 60", vec)
		}
	})
	t.Run("LabelNames", func(t *testing.T) {
		names, _, _, err := c.LabelNames(ctx, nil, t0, t0.Add(3*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{"__name__", "currency", "merchant", "path"}; !slices.Equal(toStrings(names), want) {
			t.Errorf("label names %v, want %v", names, want)
		}
		names, _, _, err = c.LabelNames(ctx, []string{"views:count"}, t0, t0.Add(3*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{"__name__", "merchant", "path"}; !slices.Equal(toStrings(names), want) {
			t.Errorf("label names of views %v, want %v", names, want)
		}
	})
	t.Run("LabelValues", func(t *testing.T) {
		vals, _, _, err := c.LabelValues(ctx, "__name__", nil, t0, t0.Add(3*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		var want []string
		for _, m := range testMetrics {
			for _, f := range []string{"count", "max", "min", "sum"} {
				want = append(want, m+":"+f)
			}
		}
		if !slices.Equal(toStrings(vals), want) {
			t.Errorf("series names %v, want %v", vals, want)
		}
		vals, _, _, err = c.LabelValues(ctx, "currency", []string{`revenue:sum{currency!="USD"}`}, t0, t0.Add(3*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(toStrings(vals), []string{"EUR"}) {
			t.Errorf("currencies %v, want [EUR]", vals)
		}
	})
	t.Run("Series", func(t *testing.T) {
		ss, _, _, err := c.Series(ctx, []string{`views:count`, `revenue:sum{currency="EUR"}`}, t0, t0.Add(3*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, s := range ss {
			got = append(got, s.String())
		}
		want := []string{
			`{__name__="revenue:sum", currency="EUR", merchant="demo"}`,
			`{__name__="views:count", merchant="demo", path="/"}`,
			`{__name__="views:count", merchant="demo", path="/pricing"}`,
		}
		if !slices.Equal(got, want) {
			t.Errorf("series %v, want %v", got, want)
		}
	})
	t.Run("BuildInfo", func(t *testing.T) {
		bi, err := c.Buildinfo(ctx)
		if err != nil || bi.Version == "" {
			t.Errorf("buildinfo %+v, %v", bi, err)
		}
	})
	t.Run("Admin", func(t *testing.T) {
		vals, _, _, err := client(t, srv.URL, tokAdmin).LabelValues(ctx, "merchant", nil, t0, t0.Add(3*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{"demo", "other", "third"}; !slices.Equal(toStrings(vals), want) {
			t.Errorf("admin sees merchants %v, want %v", vals, want)
		}
	})
}

func toStrings[S ~string](vs []S) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = string(v)
	}
	return out
}

// TestConcurrentQueries: answers of concurrent queries are the answer of
// one query alone (the engine pools the points of closed queries).
func TestConcurrentQueries(t *testing.T) {
	e := newEnv(t)
	shopData(t, e)
	srv := serve(t, e, nil)
	c := client(t, srv.URL, tokDemo)
	ctx := context.Background()
	queries := []string{`revenue:sum`, `sum by (path) (views:count)`, `max_over_time(revenue:max[10m])`, `orders:count * 2`}
	r := v1.Range{Start: t0, End: t0.Add(3 * time.Hour), Step: time.Minute}
	want := make([]string, len(queries))
	for i, q := range queries {
		v, _, _, err := c.QueryRange(ctx, q, r)
		if err != nil {
			t.Fatal(err)
		}
		want[i] = v.String()
	}
	errs := make(chan error, 8)
	for g := range 8 {
		go func() {
			for i := range 12 {
				q := (g + i) % len(queries)
				v, _, _, err := c.QueryRange(ctx, queries[q], r)
				if err == nil && v.String() != want[q] {
					err = fmt.Errorf("%s: answer differs from the same query alone", queries[q])
				}
				if err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
