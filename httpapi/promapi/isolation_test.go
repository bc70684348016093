package promapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/hourglass-io/hourglass/httpapi/promapi"
)

// probes are the expressions of the isolation probe set.
var probes = []string{
	`{__name__=~".+"}`,
	`{merchant!="x"}`,
	`{merchant=~"other|demo"}`,
	`revenue:sum{merchant!="x"}`,
	`{__name__=~".+",merchant=~"other|demo"}`,
	`{merchant=~".*"}`,
	`{merchant=""}`,
	`{merchant="other"}`,
	`revenue:sum{merchant="other"}`,
	`{__name__=~".+",merchant!="demo"}`,
	`label_replace({__name__=~".+"}, "m", "$1", "merchant", "(.*)")`,
	`label_replace(revenue:sum, "merchant", "other", "", "")`,
	`absent(revenue:sum)`,
	`absent(nothing:sum{merchant=~"other"})`,
	`absent_over_time(revenue:sum{merchant="other"}[1h])`,
	`count by (merchant) ({__name__=~".+"})`,
	`count by (merchant) (revenue:sum) or count by (merchant) (orders:count)`,
	`revenue:sum unless on(merchant) orders:count`,
	`sum by (merchant) (sum_over_time(revenue:sum[1h]))`,
	`max_over_time(sum by (merchant) (revenue:sum)[1h:5m])`,
	`topk(10, count_over_time(revenue:sum[3h]))`,
	`vector(1) + on() group_left(merchant) count by (merchant) (views:count)`,
	`sort_desc(sum by (merchant, currency) (revenue:sum offset 1h))`,
	`revenue:sum @ end()`,
	`scalar(count({merchant!="demo"}))`,
}

// probeRequests are the requests of the probe set through every endpoint.
func probeRequests() []string {
	var out []string
	r := url.Values{"start": {fmt.Sprint(t0.Unix())}, "end": {fmt.Sprint(t0.Add(3 * time.Hour).Unix())}}
	for _, p := range probes {
		out = append(out,
			"/api/v1/query?"+url.Values{"query": {p}, "time": {fmt.Sprint(t0.Add(2 * time.Hour).Unix())}}.Encode(),
			"/api/v1/query_range?"+url.Values{"query": {p}, "step": {"300"}, "start": r["start"], "end": r["end"]}.Encode(),
		)
	}
	for _, name := range []string{"merchant", "__name__", "currency", "path"} {
		out = append(out, "/api/v1/label/"+name+"/values?"+r.Encode())
		for _, m := range []string{`{merchant="other"}`, `{merchant=~"other|demo"}`, `{__name__=~".+"}`, `{merchant!="demo",__name__=~".+"}`} {
			out = append(out, "/api/v1/label/"+name+"/values?"+r.Encode()+"&"+url.Values{"match[]": {m}}.Encode())
		}
	}
	for _, m := range []string{`{__name__=~".+"}`, `{merchant=~".+"}`, `{merchant!="x"}`, `{merchant="other"}`, `revenue:sum`, `{currency="EUR"}`} {
		q := r.Encode() + "&" + url.Values{"match[]": {m}}.Encode()
		out = append(out, "/api/v1/series?"+q, "/api/v1/labels?"+q)
	}
	return append(out, "/api/v1/labels?"+r.Encode(), "/api/v1/metadata", "/api/v1/status/buildinfo")
}

// call sends a GET, or a POST with the parameters as a form body, with
// the token in one of the three ways the server reads it.
func call(t *testing.T, base, path, token string, post bool, way int) (int, []byte) {
	t.Helper()
	u, q, _ := strings.Cut(path, "?")
	var req *http.Request
	var err error
	if post {
		req, err = http.NewRequest(http.MethodPost, base+u, strings.NewReader(q))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	} else {
		req, err = http.NewRequest(http.MethodGet, base+path, nil)
	}
	if err != nil {
		t.Fatal(err)
	}
	switch way % 3 {
	case 0:
		req.Header.Set("Authorization", "Bearer "+token)
	case 1:
		req.SetBasicAuth("demo", token)
	case 2:
		req.Header.Set("X-Hourglass-Token", token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

// TestIsolationProbes sends the probe set through every endpoint: with
// the merchant's token no answer holds another merchant's data, with the
// admin token the probes do reach the other merchants.
func TestIsolationProbes(t *testing.T) {
	e := newEnv(t)
	shopData(t, e)
	srv := serve(t, e, nil)
	leaks, refused, answered, adminSaw := 0, 0, 0, 0
	for i, p := range probeRequests() {
		post := i%2 == 1
		status, body := call(t, srv.URL, p, tokDemo, post, i)
		var r struct {
			Status    string          `json:"status"`
			ErrorType string          `json:"errorType"`
			Data      json.RawMessage `json:"data"`
		}
		if err := json.Unmarshal(body, &r); err != nil {
			t.Fatalf("%s: %d %s", p, status, body)
		}
		switch {
		case r.Status == "success" && status == http.StatusOK:
			answered++
			for _, other := range []string{"other", "third"} {
				if strings.Contains(string(r.Data), `"`+other+`"`) && !strings.Contains(p, "label_replace") {
					leaks++
					t.Errorf("LEAK of %s: %s answered %s", other, p, r.Data)
				}
			}
		case r.ErrorType == "bad_data" && status == http.StatusBadRequest:
			refused++
		default:
			t.Errorf("%s: %d %s", p, status, body)
		}
		status, body = call(t, srv.URL, p, tokAdmin, post, i)
		if status == http.StatusOK && strings.Contains(string(body), `"third"`) {
			adminSaw++
		}
	}
	t.Logf("probe set: %d requests answered, %d refused (bad_data), %d leaks; the admin token saw other merchants in %d", answered, refused, leaks, adminSaw)
	if adminSaw < 20 {
		t.Errorf("the admin token saw other merchants in only %d answers: the probes do not reach them", adminSaw)
	}
	for _, tok := range []string{"", "nope", tokDemo + "x"} {
		if status, body := call(t, srv.URL, "/api/v1/query?query=revenue:sum", tok, false, 0); status != http.StatusUnauthorized {
			t.Errorf("token %q: %d %s, want 401", tok, status, body)
		}
	}
}

// TestStorageForMerchant checks the defence in depth: a merchant's Storage
// answers its merchant's series only, whatever the matchers.
func TestStorageForMerchant(t *testing.T) {
	e := newEnv(t)
	shopData(t, e)
	s := promapi.NewStorage(e.eng, &promapi.StorageOptions{Metrics: listMetrics}).ForMerchant("demo")
	q, err := s.Querier(t0.UnixMilli(), t0.Add(3*time.Hour).UnixMilli())
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	for _, ms := range [][]*labels.Matcher{
		{labels.MustNewMatcher(labels.MatchEqual, "merchant", "other")},
		{labels.MustNewMatcher(labels.MatchRegexp, "__name__", ".+")},
		{labels.MustNewMatcher(labels.MatchNotEqual, "merchant", "demo")},
		{labels.MustNewMatcher(labels.MatchRegexp, "merchant", "other|demo|third")},
	} {
		ss := q.Select(context.Background(), true, nil, ms...)
		n := 0
		for ss.Next() {
			n++
			if m := ss.At().Labels().Get("merchant"); m != "demo" {
				t.Errorf("%v: series %v of merchant %q", ms, ss.At().Labels(), m)
			}
		}
		if err := ss.Err(); err != nil {
			t.Fatal(err)
		}
		vals, _, err := q.LabelValues(context.Background(), "merchant", nil, ms...)
		if err != nil {
			t.Fatal(err)
		}
		if len(vals) > 1 || (len(vals) == 1 && vals[0] != "demo") {
			t.Errorf("%v: merchants %v", ms, vals)
		}
		t.Logf("%v: %d series, merchants %v", ms, n, vals)
	}
}
