package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hourglass-io/hourglass/internal/servertest"
	"github.com/hourglass-io/hourglass/writeback/peerhttp"
)

// TestPeersOverHTTP runs two servers with local caches, each the other's
// peer (-peers) with one tokens file: a write through one is read through
// the other at once; the internal endpoint refuses merchant and admin
// tokens; once the first is killed, the second's answers say "partial"
// and name it, and its metrics count them.
func TestPeersOverHTTP(t *testing.T) {
	tokens := filepath.Join(t.TempDir(), "tokens.json")
	portA, portB := servertest.FreePort(t), servertest.FreePort(t)
	urlA, urlB := fmt.Sprintf("http://127.0.0.1:%d", portA), fmt.Sprintf("http://127.0.0.1:%d", portB)
	a := startServer(t, t.TempDir(), "-addr", fmt.Sprintf("127.0.0.1:%d", portA), "-tokens", tokens, "-peers", urlB, "-archive-dirs", "none")
	b := startServer(t, t.TempDir(), "-addr", fmt.Sprintf("127.0.0.1:%d", portB), "-tokens", tokens, "-peers", urlA, "-archive-dirs", "none")
	demo := a.exports["HG_TOKEN"]
	admin := adminToken(t, filepath.Dir(tokens))
	if demo == "" {
		t.Fatalf("no demo token in the first server's banner:\n%s", strings.Join(a.lines, "\n"))
	}
	a.mustDo(http.StatusOK, "POST", "/v1/events", demo, "application/json", `[{"type":"order","amount":10,"currency":"EUR"}]`)
	b.mustDo(http.StatusOK, "POST", "/v1/events", demo, "application/json", `[{"type":"order","amount":7,"currency":"EUR"}]`)
	for _, p := range []*serverProc{a, b} {
		if got := p.query(demo, "revenue", "from=now-1h&step=1h", "currency"); got["EUR"] != 17 {
			t.Errorf("revenue through %s: %v, want EUR 17 (10 cached by one server, 7 by the other, in the same cell)", p.url, got)
		}
	}
	for name, tok := range map[string]string{"merchant": demo, "admin": admin, "none": ""} {
		code, _, body := b.do("POST", peerhttp.Path, tok, "application/json", `{"Metric":"revenue","From":0,"To":1}`)
		if code != http.StatusUnauthorized {
			t.Errorf("%s token on the internal endpoint: %d %s, want 401", name, code, body)
		}
	}

	_ = a.cmd.Process.Kill()
	_ = a.cmd.Wait()
	body := b.mustDo(http.StatusOK, "GET", "/v1/metrics/revenue?from=now-1h&step=1h", demo, "", "")
	var r struct {
		Partial      bool     `json:"partial"`
		MissingPeers []string `json:"missing_peers"`
	}
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		t.Fatal(err)
	}
	if !r.Partial || !slices.Equal(r.MissingPeers, []string{urlA}) {
		t.Errorf("answer with the peer down: partial %v, missing %v; want true, [%s]", r.Partial, r.MissingPeers, urlA)
	}
	if m := b.mustDo(http.StatusOK, "GET", "/metrics", "", "", ""); !strings.Contains(m, "hourglass_writeback_partial_answers_total 1") {
		t.Errorf("/metrics does not count one partial answer:\n%s", grepLines(m, "partial"))
	}
}
