package main

import (
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hourglass-io/hourglass/internal/servertest"
)

// TestBalancerPassesBackPressure runs two real servers behind the real
// balancer. Server A cannot flush (its only standby is down and its ack
// level is "all") and its cache bound is tiny, so once it holds a write it
// sheds every further write with 503 and Retry-After. A merchant whose
// writes hash to A gets those answers through the balancer, every time,
// and none of its writes reaches server B: a write has one writer, and
// back-pressure does not move it. Its reads are still answered.
func TestBalancerPassesBackPressure(t *testing.T) {
	dirA, dirB := t.TempDir(), t.TempDir()
	tokens := filepath.Join(dirA, "tokens.json")
	dead := fmt.Sprintf("http://127.0.0.1:%d", servertest.FreePort(t))
	a := startServer(t, dirA, "-tokens", tokens, "-max-cache-bytes", "1", "-standby-influx-urls", dead, "-influx-write-api", "v1", "-ack", "all")
	b := startServer(t, dirB, "-tokens", tokens)
	admin := adminToken(t, dirA)
	// A's one accepted write: from now on its cache is over its bound.
	a.mustDo(http.StatusOK, "POST", "/v1/events", a.merchantToken(admin, "primer"), "application/json", `[{"type":"page_view","path":"/"}]`)

	lb := startBalancer(t, "-backends", a.url+","+b.url, "-check-interval", "1s")
	order := `[{"type":"order","amount":10,"currency":"EUR"}]`
	var onA []string
	for i := range 20 {
		tok := a.merchantToken(admin, fmt.Sprint("m", i))
		code, hdr, body := lb.do("POST", "/v1/events", tok, "application/json", order)
		switch {
		case code == http.StatusOK:
		case code == http.StatusServiceUnavailable && hdr.Get("Retry-After") != "" && strings.Contains(body, "the cache holds"):
			onA = append(onA, tok)
		default:
			t.Fatalf("POST through the balancer: %d %v %s", code, hdr, body)
		}
	}
	if len(onA) == 0 || len(onA) == 20 {
		t.Fatalf("%d of 20 merchants hash to the shedding server; want some, not all", len(onA))
	}
	tok := onA[0]
	for i := range 10 {
		code, hdr, body := lb.do("POST", "/v1/events", tok, "application/json", order)
		if code != http.StatusServiceUnavailable || hdr.Get("Retry-After") != "5" {
			t.Fatalf("write %d of a merchant on the shedding server: %d, Retry-After %q, %s; want 503 with its Retry-After", i, code, hdr.Get("Retry-After"), body)
		}
	}
	for _, tok := range onA {
		if got := b.query(tok, "revenue", "from=now-1h&step=1h", "currency"); len(got) != 0 {
			t.Errorf("server B holds revenue %v of a merchant whose writes go to A", got)
		}
	}
	if code, _, body := lb.do("GET", "/v1/metrics/revenue?from=now-1h", tok, "", ""); code != http.StatusOK {
		t.Errorf("read through the balancer while the merchant's server sheds writes: %d %s", code, body)
	}
}

// startBalancer starts "server lb" on a free port.
func startBalancer(t *testing.T, args ...string) *serverProc {
	t.Helper()
	cmd := exec.Command(serverBin, append([]string{"lb", "-addr", "127.0.0.1:0"}, args...)...)
	cmd.Env = cleanEnv()
	p := &serverProc{t: t, cmd: cmd, stderr: &lockedBuffer{}, client: &http.Client{Timeout: time.Minute}}
	cmd.Stderr = p.stderr
	rest := servertest.StartListening(t, cmd, "hourglass balancer listening on ", p.stderr)
	p.url, _, _ = strings.Cut(rest, ",")
	return p
}
