package promapi_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/hourglass-io/hourglass/httpapi/promapi"
)

// TestErrors: malformed requests get bad_data, queries over the bounds
// execution or timeout, with Prometheus' statuses, never a partial answer.
func TestErrors(t *testing.T) {
	e := newEnv(t)
	shopData(t, e)
	now := func() time.Time { return t0.Add(3 * time.Hour) }
	small := serve(t, e, &promapi.Options{Authorize: authorize, Metrics: listMetrics, Now: now, MaxSamples: 100, MaxSeries: 5})
	srv := serve(t, e, nil)
	rng := "&start=" + url.QueryEscape(t0.Format(time.RFC3339)) + "&end=" + url.QueryEscape(t0.Add(3*time.Hour).Format(time.RFC3339))
	for _, c := range []struct {
		base, path string
		status     int
		typ        string
	}{
		{srv.URL, "/api/v1/query", 400, "bad_data"},
		{srv.URL, "/api/v1/query?query=sum(", 400, "bad_data"},
		{srv.URL, "/api/v1/query?query=revenue:sum&time=yesterday", 400, "bad_data"},
		{srv.URL, "/api/v1/query?query=revenue:sum&timeout=soon", 400, "bad_data"},
		{srv.URL, "/api/v1/query_range?query=revenue:sum" + rng, 400, "bad_data"},
		{srv.URL, "/api/v1/query_range?query=revenue:sum&step=0" + rng, 400, "bad_data"},
		{srv.URL, "/api/v1/query_range?query=revenue:sum&step=-60" + rng, 400, "bad_data"},
		{srv.URL, "/api/v1/query_range?query=revenue:sum&step=0.1" + rng, 400, "bad_data"},
		{srv.URL, "/api/v1/query_range?query=revenue:sum&step=60&start=100&end=50", 400, "bad_data"},
		{srv.URL, "/api/v1/query_range?query=revenue:sum[5m]&step=60" + rng, 400, "bad_data"},
		{srv.URL, "/api/v1/series" + "?" + rng[1:], 400, "bad_data"},
		{srv.URL, "/api/v1/series?match[]=" + url.QueryEscape(`{path=~".*"}`) + rng, 400, "bad_data"},
		{srv.URL, "/api/v1/labels?limit=x", 400, "bad_data"},
		{srv.URL, "/api/v1/query?query=revenue:sum&timeout=0.000000001", 503, "timeout"},
		{srv.URL, "/api/v1/query?query=" + url.QueryEscape(`revenue:sum + on(merchant) orders:count`), 422, "execution"},
		{small.URL, "/api/v1/query_range?query=revenue:sum&step=60" + rng, 422, "execution"},
		{small.URL, "/api/v1/query?query=" + url.QueryEscape(`{__name__=~".+"}`) + "&time=" + url.QueryEscape(t0.Add(time.Hour).Format(time.RFC3339)), 422, "execution"},
		{small.URL, "/api/v1/series?match[]=" + url.QueryEscape(`{__name__=~".+"}`) + rng, 422, "execution"},
	} {
		for _, post := range []bool{false, true} {
			status, body := call(t, c.base, c.path, tokDemo, post, 0)
			var r struct{ Status, ErrorType, Error string }
			if err := json.Unmarshal(body, &r); err != nil || status != c.status || r.Status != "error" || r.ErrorType != c.typ || r.Error == "" {
				t.Errorf("%s (post %v): %d %.300s, want %d %s", c.path, post, status, body, c.status, c.typ)
			}
		}
	}
	req, _ := http.NewRequest(http.MethodPut, srv.URL+"/api/v1/query?query=1", strings.NewReader(""))
	req.Header.Set("Authorization", "Bearer "+tokDemo)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("PUT: %v %v, want 405", resp, err)
	} else {
		resp.Body.Close()
	}
}
