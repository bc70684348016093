package main

import (
	"net/http"
	"strings"
	"testing"
)

// TestTenantIsolation: merchant B can neither read nor write merchant A's
// data through any endpoint, label filter or group-by; forged, missing and
// admin tokens are refused on merchant endpoints and merchant tokens on admin
// endpoints.
func TestTenantIsolation(t *testing.T) {
	dir := t.TempDir()
	p := startServer(t, dir)
	admin := adminToken(t, dir)
	a, b := p.merchantToken(admin, "shop-a"), p.merchantToken(admin, "shop-b")

	p.mustDo(http.StatusOK, "POST", "/v1/events", a, "application/json", `[{"type":"order","amount":100,"currency":"EUR"}]`)
	p.mustDo(http.StatusNoContent, "POST", "/write", a, "", "order,currency=EUR value=50\ncpu,host=a usage=1")
	p.mustDo(http.StatusNoContent, "POST", "/api/v2/write", a, "", "cpu,host=a,merchant=shop-a usage=2")
	p.mustDo(http.StatusOK, "POST", "/v1/events", b, "application/json", `[{"type":"order","amount":1,"currency":"EUR"}]`)

	// B's reads see only B, whatever the filters and grouping.
	for _, params := range []string{"", "group_by=merchant", "group_by=", "label.currency=EUR", "label.merchant=shop-b", "agg=max&group_by=currency,merchant"} {
		if got := p.query(b, "revenue", params, "merchant"); !equalFigures(got, map[string]float64{"shop-b": 1}) && !(strings.HasPrefix(params, "group_by=") && params != "group_by=merchant" && equalFigures(got, map[string]float64{"": 1})) {
			t.Errorf("B reads revenue?%s: %v, want only shop-b's 1", params, got)
		}
	}
	if got := p.query(b, "cpu_usage", "group_by=", "merchant"); len(got) != 0 {
		t.Errorf("B reads A's cpu_usage: %v", got)
	}
	if got := p.query(a, "revenue", "group_by=merchant", "merchant"); !equalFigures(got, map[string]float64{"shop-a": 150}) {
		t.Errorf("A's revenue: %v, want 150", got)
	}
	// Naming another merchant is refused.
	for _, req := range []struct{ method, path, ct, body string }{
		{"GET", "/v1/metrics/revenue?label.merchant=shop-a", "", ""},
		{"POST", "/write", "", "cpu,merchant=shop-a usage=9"},
		{"POST", "/api/v2/write", "", "order,merchant=shop-a,currency=EUR value=9"},
		{"POST", "/v1/events", "application/json", `[{"type":"order","amount":9,"currency":"EUR","merchant":"shop-a"}]`},
	} {
		code, _, body := p.do(req.method, req.path, b, req.ct, req.body)
		if code != http.StatusBadRequest || !strings.Contains(body, "merchant") {
			t.Errorf("B %s %s naming shop-a: %d %s, want 400 naming merchant", req.method, req.path, code, body)
		}
	}
	if got := p.query(a, "revenue", "group_by=", "merchant"); !equalFigures(got, map[string]float64{"": 150}) {
		t.Errorf("A's revenue after B's attempts: %v, want 150", got)
	}

	// Tokens: forged (A's merchant with B's signature), missing, admin on a
	// merchant endpoint, merchant on an admin endpoint.
	forged := "hg_shop-a_" + strings.TrimPrefix(b, "hg_shop-b_")
	for _, tok := range []string{forged, "", admin, "hg_shop-a_", a + "x"} {
		if code, h, _ := p.do("GET", "/v1/metrics/revenue", tok, "", ""); code != http.StatusUnauthorized || h.Get("WWW-Authenticate") == "" {
			t.Errorf("token %q: status %d, want 401 with WWW-Authenticate", tok, code)
		}
	}
	for _, path := range []string{"/v1/admin/flush", "/v1/admin/merchants"} {
		if code, _, _ := p.do("POST", path, a, "application/json", `{"merchant":"x"}`); code != http.StatusUnauthorized {
			t.Errorf("merchant token on %s: %d, want 401", path, code)
		}
	}
	// InfluxDB 1.x clients' ways of passing the token work too, bound alike.
	p.mustDo(http.StatusNoContent, "POST", "/write?u=x&p="+b, "", "", "cpu,host=b usage=3")
	// Only there: a token in the URL of any other route is refused, the
	// admin API and PromQL included.
	for _, c := range []struct{ method, path string }{
		{"GET", "/v1/admin/quarantine?p=" + admin},
		{"POST", "/v1/admin/flush?p=" + admin},
		{"GET", "/api/v1/query?query=1&p=" + admin},
		{"GET", "/api/v1/query?query=1&p=" + b},
		{"GET", "/v1/metrics/revenue?p=" + b},
	} {
		if code, _, body := p.do(c.method, c.path, "", "", ""); code != http.StatusUnauthorized || !strings.Contains(body, "Authorization header") {
			t.Errorf("%s %s: %d %s, want 401 naming the Authorization header", c.method, c.path, code, body)
		}
	}
	if got := p.query(b, "cpu_usage", "group_by=host", "host"); !equalFigures(got, map[string]float64{"b": 3}) {
		t.Errorf("B's cpu_usage: %v", got)
	}
}
