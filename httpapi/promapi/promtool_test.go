package promapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/url"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/common/model"

	"github.com/hourglass-io/hourglass/internal/servertest"
	"github.com/hourglass-io/hourglass/tsstore"
)

// promtool runs promtool query with args and returns its standard output.
func promtool(t *testing.T, bin string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{"query"}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("promtool query %s: %v\n%s%s", strings.Join(args, " "), err, out.String(), errb.String())
	}
	return out.Bytes()
}

// TestPromtool queries with Debian's promtool 2.42, which sends the URL's
// user info as basic auth, and compares its answers with the engine's
// Query on the same data.
func TestPromtool(t *testing.T) {
	bin := servertest.PromtoolBin(t)
	e := newEnv(t)
	shopData(t, e)
	srv := serve(t, e, nil)
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword("demo", tokDemo)
	server := u.String()
	demo := []tsstore.Matcher{{Type: tsstore.MatchEqual, Name: "merchant", Value: "demo"}}
	rfc := func(d time.Duration) string { return t0.Add(d).Format(time.RFC3339Nano) }
	sum := func(a tsstore.Agg) float64 { return a.Sum }

	t.Run("range", func(t *testing.T) {
		out := promtool(t, bin, "range", "-o", "json", "--start="+rfc(time.Hour-time.Millisecond), "--end="+rfc(3*time.Hour-time.Millisecond), "--step=1h",
			server, `sum by (currency) (sum_over_time(revenue:sum[1h]))`)
		var m model.Matrix
		if err := json.Unmarshal(out, &m); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		want := engineSeries(t, e, tsstore.Query{Metric: "revenue", Matchers: demo, From: t0.UnixMilli(), To: t0.Add(3 * time.Hour).UnixMilli(), Step: time.Hour, GroupBy: []string{"currency"}}, sum)
		if diff := cmp.Diff(want, fromMatrix(m, 1-time.Hour.Milliseconds())); diff != "" || len(want) != 2 {
			t.Errorf("promtool's answer differs from the engine's Query (-engine +promtool):\n%s", diff)
		}
	})
	t.Run("instant", func(t *testing.T) {
		out := promtool(t, bin, "instant", "-o", "json", "--time="+rfc(2*time.Hour-time.Millisecond), server, `sum by (path) (sum_over_time(views:count[1h]))`)
		var v model.Vector
		if err := json.Unmarshal(out, &v); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		want := engineSeries(t, e, tsstore.Query{Metric: "views", Matchers: demo, From: t0.Add(time.Hour).UnixMilli(), To: t0.Add(2 * time.Hour).UnixMilli(), Step: time.Hour, GroupBy: []string{"path"}},
			func(a tsstore.Agg) float64 { return float64(a.Count) })
		got := map[string]map[int64]float64{}
		for _, s := range v {
			got[labelKey(map[string]string{"path": string(s.Metric["path"])})] = map[int64]float64{t0.Add(time.Hour).UnixMilli(): float64(s.Value)}
		}
		if diff := cmp.Diff(want, got); diff != "" || len(want) != 2 {
			t.Errorf("promtool's answer differs from the engine's Query (-engine +promtool):\n%s", diff)
		}
	})
	t.Run("labels", func(t *testing.T) {
		out := promtool(t, bin, "labels", "--start="+rfc(0), "--end="+rfc(3*time.Hour), server, "merchant")
		if got := strings.Fields(string(out)); !slices.Equal(got, []string{"demo"}) {
			t.Errorf("merchant values %q, want [demo]", got)
		}
		out = promtool(t, bin, "labels", "--start="+rfc(0), "--end="+rfc(3*time.Hour), server, "currency")
		if got := strings.Fields(string(out)); !slices.Equal(got, []string{"EUR", "USD"}) {
			t.Errorf("currency values %q, want [EUR USD]", got)
		}
	})
	t.Run("series", func(t *testing.T) {
		out := promtool(t, bin, "series", "--match=revenue:sum", "--match={merchant=~\"other|demo\",__name__=\"views:max\"}", "--start="+rfc(0), "--end="+rfc(3*time.Hour), server)
		got := strings.Split(strings.TrimSpace(string(out)), "\n")
		want := []string{
			`{__name__="revenue:sum", currency="EUR", merchant="demo"}`,
			`{__name__="revenue:sum", currency="USD", merchant="demo"}`,
			`{__name__="views:max", merchant="demo", path="/"}`,
			`{__name__="views:max", merchant="demo", path="/pricing"}`,
		}
		if !slices.Equal(got, want) {
			t.Errorf("series\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	})
}
