package main

import (
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/hourglass-io/hourglass/internal/servertest"
)

// TestPromQL: the server's Prometheus API answers as /v1/metrics, per
// merchant; promtool reads it with the token as basic-auth password.
func TestPromQL(t *testing.T) {
	dir := t.TempDir()
	p := startServer(t, dir)
	admin := adminToken(t, dir)
	a, b := p.merchantToken(admin, "shop-a"), p.merchantToken(admin, "shop-b")
	p.mustDo(http.StatusOK, "POST", "/v1/events", a, "application/json", `[{"type":"order","amount":100,"currency":"EUR"},{"type":"order","amount":7,"currency":"USD"},{"type":"refund","amount":2.5,"currency":"EUR"},{"type":"page_view","path":"/pricing"}]`)
	p.mustDo(http.StatusOK, "POST", "/v1/events", b, "application/json", `[{"type":"order","amount":1,"currency":"EUR"}]`)

	promql := func(token, expr string) map[string]float64 {
		t.Helper()
		body := p.mustDo(http.StatusOK, "GET", "/api/v1/query?"+url.Values{"query": {expr}}.Encode(), token, "", "")
		var r struct {
			Data struct {
				Result []struct {
					Metric map[string]string
					Value  [2]any
				}
			}
		}
		if err := json.Unmarshal([]byte(body), &r); err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		out := map[string]float64{}
		for _, s := range r.Data.Result {
			var v float64
			_ = json.Unmarshal([]byte(s.Value[1].(string)), &v)
			out[s.Metric["currency"]+s.Metric["merchant"]] += v
		}
		return out
	}
	want := p.query(a, "revenue", "from=now-2h&group_by=currency", "currency")
	if got := promql(a, `sum by (currency) (sum_over_time(revenue:sum[2h]))`); !equalFigures(got, want) || len(want) != 2 {
		t.Errorf("PromQL revenue by currency %v, /v1/metrics %v", got, want)
	}
	if got := promql(b, `count by (merchant) ({__name__=~".+"})`); !equalFigures(got, map[string]float64{"shop-b": 8}) {
		t.Errorf("shop-b's series by merchant: %v, want only shop-b's 8 (orders and revenue)", got)
	}
	if got := promql(admin, `count by (merchant) (revenue:sum)`); !equalFigures(got, map[string]float64{"shop-a": 2, "shop-b": 1}) {
		t.Errorf("admin's revenue series by merchant: %v", got)
	}
	if code, _, body := p.do("GET", "/api/v1/query?query="+url.QueryEscape(`revenue:sum{merchant="shop-a"}`), b, "", ""); code != http.StatusBadRequest || !strings.Contains(body, "bad_data") {
		t.Errorf("shop-b naming shop-a: %d %s, want 400 bad_data", code, body)
	}
	if code, _, _ := p.do("GET", "/api/v1/query?query=1", "", "", ""); code != http.StatusUnauthorized {
		t.Errorf("no token: %d, want 401", code)
	}

	t.Run("grafana", func(t *testing.T) {
		// Every query of the Grafana dashboard answers from this server
		// (hourglass) or names a metric of its /metrics (hourglass-ops).
		b, err := os.ReadFile("../grafana/dashboards/hourglass.json")
		if err != nil {
			t.Fatal(err)
		}
		var d struct {
			Panels []struct {
				Title   string
				Targets []struct {
					Expr       string
					Datasource struct{ UID string }
				}
			}
		}
		if err := json.Unmarshal(b, &d); err != nil {
			t.Fatal(err)
		}
		metrics := p.mustDo(http.StatusOK, "GET", "/metrics", "", "", "")
		n := 0
		for _, panel := range d.Panels {
			for _, tg := range panel.Targets {
				n++
				if tg.Datasource.UID == "hourglass-ops" {
					if name, _, _ := strings.Cut(tg.Expr, "{"); !strings.Contains(metrics, "\n"+name+" ") {
						t.Errorf("%s: %s is not in /metrics", panel.Title, name)
					}
					continue
				}
				expr := strings.NewReplacer("$__interval", "5m", "$__range", "1h").Replace(tg.Expr)
				if got := promql(a, expr); len(got) == 0 {
					t.Errorf("%s: %s answered nothing", panel.Title, expr)
				}
			}
		}
		if n < 6 {
			t.Errorf("the dashboard has %d queries", n)
		}
	})
	t.Run("readme", func(t *testing.T) {
		// Every PromQL of the README's table answers.
		b, err := os.ReadFile("../../README.md")
		if err != nil {
			t.Fatal(err)
		}
		_, sec, _ := strings.Cut(string(b), "### PromQL and Grafana")
		sec, _, _ = strings.Cut(sec, "\n```")
		n := 0
		for _, l := range strings.Split(sec, "\n") {
			cols := strings.Split(l, " | ")
			if len(cols) != 2 || !strings.HasPrefix(cols[1], "`") || !strings.Contains(cols[1], "(") {
				continue
			}
			expr := strings.Split(cols[1], "`")[1]
			n++
			if code, _, body := p.do("GET", "/api/v1/query?"+url.Values{"query": {expr}}.Encode(), a, "", ""); code != http.StatusOK {
				t.Errorf("README's %s: %d %s", expr, code, body)
			}
		}
		if n < 8 {
			t.Errorf("found %d PromQL expressions in the README's table", n)
		}
	})
	t.Run("promtool", func(t *testing.T) {
		bin := servertest.PromtoolBin(t)
		u, _ := url.Parse(p.url)
		u.User = url.UserPassword("shop-b", b)
		out, err := exec.Command(bin, "query", "labels", u.String(), "merchant").CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != "shop-b" {
			t.Errorf("promtool query labels merchant as shop-b: %v %q, want shop-b", err, out)
		}
	})
}
