package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	influxdb2 "github.com/influxdata/influxdb-client-go/v2"
	"github.com/influxdata/influxdb-client-go/v2/api/write"

	"github.com/hourglass-io/hourglass/internal/servertest"
	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/tsstore/archive"
	"github.com/hourglass-io/hourglass/tsstore/archive/dirarchive"
)

// TestEndToEnd runs the real binary: the curl lines of the first start's
// banner as printed, then every ingest API (JSON batch, NDJSON, /write line
// protocol, /api/v2/write with influxdb-client-go's blocking writer), queries,
// SIGTERM, a restart, and the same figures again.
func TestEndToEnd(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		servertest.Missing(t, "curl", "install curl (the banner's lines are curl commands)")
	}
	dir := t.TempDir()
	p := startServer(t, dir)

	// The banner: exports and the curl lines, run as printed.
	for _, k := range []string{"HG_URL", "HG_TOKEN", "HG_ADMIN"} {
		if p.exports[k] == "" {
			t.Fatalf("banner has no export %s:\n%s", k, strings.Join(p.lines, "\n"))
		}
	}
	if fi, err := os.Stat(dir + "/tokens.json"); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("tokens.json: %v, mode %v; want 0600", err, fi.Mode())
	}
	printed := strings.Join(p.lines, "\n")
	for _, l := range curlLines {
		if !strings.Contains(printed, "\n"+l+"\n") && !strings.HasSuffix(printed, "\n"+l) {
			t.Fatalf("banner lacks the line %s", l)
		}
		cmd := exec.Command("sh", "-c", "set -e; "+l+" -f")
		cmd.Env = append(cleanEnv(), "HG_URL="+p.exports["HG_URL"], "HG_TOKEN="+p.exports["HG_TOKEN"], "HG_ADMIN="+p.exports["HG_ADMIN"])
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", l, err, out)
		}
	}
	demo := p.exports["HG_TOKEN"]
	wantDemo := map[string]float64{"EUR": 10, "USD": 30}
	if got := p.query(demo, "revenue", "from=now-1h&step=1h", "currency"); !equalFigures(got, wantDemo) {
		t.Fatalf("demo revenue after the banner's curl lines: %v, want %v", got, wantDemo)
	}

	// Every ingest API, for another merchant.
	admin := adminToken(t, dir)
	if admin != p.exports["HG_ADMIN"] {
		t.Fatalf("printed admin token differs from the tokens file")
	}
	tok := p.merchantToken(admin, "shop1")
	p.mustDo(http.StatusOK, "POST", "/v1/events", tok, "application/json",
		`[{"type":"order","amount":12.5,"currency":"EUR","status":"paid"},{"type":"order","amount":30,"currency":"USD"},
		  {"type":"refund","amount":2.5,"currency":"EUR"},{"type":"page_view","path":"/pricing","device":"mobile"}]`)
	p.mustDo(http.StatusOK, "POST", "/v1/events", tok, "application/x-ndjson",
		"{\"type\":\"order\",\"amount\":10,\"currency\":\"EUR\"}\n\n{\"type\":\"order\",\"amount\":5,\"currency\":\"EUR\",\"status\":\"paid\"}\n"+
			"{\"type\":\"order\",\"amount\":100,\"currency\":\"EUR\",\"status\":\"pending\"}\n")
	now := time.Now()
	p.mustDo(http.StatusNoContent, "POST", "/write?db=ignored&precision=ms", tok, "text/plain",
		fmt.Sprintf("order,currency=EUR,status=paid value=7 %d\ncpu,host=a usage_idle=50 %d\n", now.UnixMilli(), now.UnixMilli()))

	ic := influxdb2.NewClientWithOptions(p.url, tok, influxdb2.DefaultOptions().SetHTTPClient(p.client))
	w := ic.WriteAPIBlocking("any-org", "any-bucket")
	pts := []*write.Point{
		influxdb2.NewPoint("order", map[string]string{"currency": "GBP"}, map[string]any{"value": 20.0}, now),
		influxdb2.NewPoint("cpu", map[string]string{"host": "b"}, map[string]any{"usage_idle": 70, "up": true, "note": "skipped"}, now),
	}
	if err := w.WritePoint(context.Background(), pts...); err != nil {
		t.Fatalf("influxdb-client-go WritePoint: %v", err)
	}
	ic.Close()

	check := func(p *serverProc, when string) {
		t.Helper()
		want := map[string]map[string]float64{
			"revenue/currency":    {"EUR": 32, "USD": 30, "GBP": 20},
			"orders/status":       {"paid": 5, "pending": 1, "": 1},
			"refunds/currency":    {"EUR": 1},
			"views/path":          {"/pricing": 1},
			"cpu_usage_idle/host": {"a": 50, "b": 70},
			"cpu_up/host":         {"b": 1},
		}
		for k, w := range want {
			metric, by, _ := strings.Cut(k, "/")
			if got := p.query(tok, metric, "from=now-1h&step=1h&group_by="+by, by); !equalFigures(got, w) {
				t.Errorf("%s: %s by %s = %v, want %v", when, metric, by, got, w)
			}
		}
		if got := p.query(tok, "revenue", "from=now-1h&agg=count&label.currency=EUR", "merchant"); !equalFigures(got, map[string]float64{"shop1": 5}) {
			t.Errorf("%s: count of EUR revenue points = %v, want 5", when, got)
		}
		if got := p.query(demo, "revenue", "from=now-1h&step=1h", "currency"); !equalFigures(got, wantDemo) {
			t.Errorf("%s: demo revenue %v, want %v", when, got, wantDemo)
		}
	}
	check(p, "before restart")
	if t.Failed() {
		t.FailNow()
	}

	p.stop()
	p2 := startServer(t, dir)
	if p2.exports["HG_TOKEN"] != "" {
		t.Fatal("a restart printed the tokens again")
	}
	check(p2, "after restart")
	p2.mustDo(http.StatusOK, "POST", "/v1/admin/flush", admin, "", "")
	p2.stop()

	// The archive holds the raw events, as written.
	arc, err := dirarchive.Open(dir+"/archive", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer arc.Close()
	raw := map[string]float64{}
	err = arc.Scan(context.Background(), archive.ScanRequest{
		From: now.Add(-time.Hour).UnixMilli(), To: now.Add(time.Hour).UnixMilli(),
		Matchers: []tsstore.Matcher{{Type: tsstore.MatchEqual, Name: "merchant", Value: "shop1"}},
	}, func(pt tsstore.Point) error {
		raw[pt.Metric+"/"+pt.Labels.Get("currency")+pt.Labels.Get("path")] += pt.Value
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	wantRaw := map[string]float64{
		"order/EUR": 12.5 + 10 + 5 + 100 + 7, "order/USD": 30, "order/GBP": 20, "refund/EUR": 2.5,
		"page_view//pricing": 1, "cpu_usage_idle/": 120, "cpu_up/": 1,
	}
	if !equalFigures(raw, wantRaw) {
		t.Fatalf("archived raw events of shop1: %v, want %v", raw, wantRaw)
	}
}

// equalFigures compares figures to 1e-9.
func equalFigures(a, b map[string]float64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		w, ok := b[k]
		if !ok || v-w > 1e-9 || w-v > 1e-9 {
			return false
		}
	}
	return true
}
