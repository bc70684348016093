package main

import (
	"bytes"
	"compress/gzip"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// TestRejections: 413 over the body limit (also after gzip decoding), 400
// naming the event, line and field, 429 with Retry-After, and nothing of a
// rejected request kept.
func TestRejections(t *testing.T) {
	dir := t.TempDir()
	p := startServer(t, dir, "-max-body", "2048", "-rate", "0.5", "-burst", "20")
	admin := adminToken(t, dir)
	tok := p.merchantToken(admin, "shop")

	big := "[" + strings.Repeat(`{"type":"page_view","path":"/x"},`, 100) + `{"type":"page_view","path":"/x"}]`
	if code, _, body := p.do("POST", "/v1/events", tok, "application/json", big); code != http.StatusRequestEntityTooLarge {
		t.Errorf("big body: %d %s, want 413", code, body)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(strings.Repeat("cpu usage=1\n", 1000)))
	zw.Close()
	req, _ := http.NewRequest("POST", p.url+"/write", &gz)
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Encoding", "gzip")
	resp, err := p.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if gz.Len() < 2048 && resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("gzip body of %d bytes decoding to 12000: %d, want 413", gz.Len(), resp.StatusCode)
	}

	for _, c := range []struct{ path, ct, body, want string }{
		{"/v1/events", "application/json", `[{"type":"order","amount":1,"currency":"EUR"},{"type":"page_view","path":"/a"},{"type":"signup"}]`, `event 2: field \"type\": unknown event type \"signup\"`},
		{"/v1/events", "application/json", `[{"type":"order","amount":1,"currency":"EURO"}]`, `event 0: field \"currency\"`},
		{"/v1/events", "application/json", `[{"type":"order","amount":"1","currency":"EUR"}]`, `event 0: field \"amount\"`},
		{"/v1/events", "application/json", `[{"type":"order","amount":1,"currency":"EUR","colour":"red"}]`, `event 0: unknown field \"colour\"`},
		{"/v1/events", "application/json", `[{"type":"order",`, `truncated JSON`},
		{"/v1/events", "application/x-ndjson", "{\"type\":\"page_view\",\"path\":\"/a\"}\n{\"type\":\"order\"}\n", `line 2: field \"amount\": required`},
		{"/v1/events", "application/json", `[{"type":"order","amount":1,"currency":"EUR","time":"2001-01-01T00:00:00Z"}]`, `event 0: field \"time\"`},
		{"/write", "", "cpu usage=1\ncpu usage=\n", `line 2`},
		{"/api/v2/write", "", "cpu usage=1\nmem,host=a free=1x\n", `line 2`},
		{"/write?precision=fortnight", "", "cpu usage=1", `precision \"fortnight\"`},
		{"/v1/events", "text/csv", "a,b", `Content-Type`},
	} {
		code, _, body := p.do("POST", c.path, tok, c.ct, c.body)
		want := http.StatusBadRequest
		if c.ct == "text/csv" {
			want = http.StatusUnsupportedMediaType
		}
		if code != want || !strings.Contains(body, c.want) {
			t.Errorf("POST %s %q: %d %s, want %d containing %s", c.path, c.body, code, body, want, c.want)
		}
	}
	code, _, body := p.do("GET", "/v1/metrics/revenue?step=90s", tok, "", "")
	if code != http.StatusBadRequest || !strings.Contains(body, "step") {
		t.Errorf("step 90s: %d %s", code, body)
	}
	// Nothing of the rejected requests was kept: the first event of the
	// batch with a bad third one is not there.
	if got := p.query(tok, "orders", "group_by=", "x"); len(got) != 0 {
		t.Errorf("orders after rejected requests: %v, want none", got)
	}
	if got := p.query(tok, "views", "group_by=", "x"); len(got) != 0 {
		t.Errorf("views after rejected requests: %v, want none", got)
	}

	// The bucket (20, refilled at 0.5/s) is nearly empty by now: requests
	// soon get 429 with Retry-After; other merchants do not.
	got429 := false
	for i := 0; i < 20 && !got429; i++ {
		code, h, body := p.do("GET", "/v1/metrics/orders", tok, "", "")
		if code == http.StatusTooManyRequests {
			got429 = true
			if s, err := strconv.Atoi(h.Get("Retry-After")); err != nil || s < 1 {
				t.Errorf("429 with Retry-After %q", h.Get("Retry-After"))
			}
			if !strings.Contains(body, "rate limit") {
				t.Errorf("429 body %s", body)
			}
		}
	}
	if !got429 {
		t.Error("no 429 within 20 requests at 0.5 requests/s with a burst of 20")
	}
	other := p.merchantToken(admin, "other")
	p.mustDo(http.StatusOK, "GET", "/v1/metrics/orders", other, "", "")

	// PromQL queries take from the same bucket: a merchant that sends only
	// those is limited too, the admin token is not.
	third := p.merchantToken(admin, "third")
	got429 = false
	for i := 0; i < 25 && !got429; i++ {
		code, h, body := p.do("GET", "/api/v1/query?query=1", third, "", "")
		switch code {
		case http.StatusOK:
		case http.StatusTooManyRequests:
			got429 = true
			if s, err := strconv.Atoi(h.Get("Retry-After")); err != nil || s < 1 || !strings.Contains(body, "rate limit") {
				t.Errorf("PromQL 429 with Retry-After %q: %s", h.Get("Retry-After"), body)
			}
		default:
			t.Fatalf("PromQL query %d: %d %s", i, code, body)
		}
	}
	if !got429 {
		t.Error("no PromQL 429 within 25 queries at 0.5 requests/s with a burst of 20")
	}
	for range 25 {
		p.mustDo(http.StatusOK, "GET", "/api/v1/query?query=1", admin, "", "")
	}
}
