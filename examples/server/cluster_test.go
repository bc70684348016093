package main

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hourglass-io/hourglass/httpapi"
	"github.com/hourglass-io/hourglass/internal/servertest"
	"github.com/hourglass-io/hourglass/tsstore/influx"
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

// TestTakeoverThroughServers runs two servers as one cluster over a Redis
// and the real InfluxDB, writes through the first, SIGKILLs it before any
// flush, and checks that the second answers every acknowledged write at
// once (the first server's folded cells and then its adopted prefix) and
// that they reach the store within the lease TTL plus a check and a flush,
// without the first server coming back.
func TestTakeoverThroughServers(t *testing.T) {
	influxURL := servertest.InfluxURL(t)
	r := servertest.StartRedis(t)
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens.json")
	var rb [4]byte
	_, _ = rand.Read(rb[:])
	db := "hgtakeover" + hex.EncodeToString(rb[:])
	const ttl = 2 * time.Second
	start := func(name string) *serverProc {
		return startServer(t, filepath.Join(dir, name), "-tokens", tokens, "-archive-dirs", "none", "-cache", "redis", "-redis-addr", r.Addr,
			"-redis-prefix", name, "-cluster", "tk", "-lease-ttl", ttl.String(), "-store", "influx", "-influx-url", influxURL, "-influx-db", db, "-influx-write-api", "v1")
	}
	a := start("a")
	b := start("b")
	demo := a.exports["HG_TOKEN"]
	const writes = 50
	for range writes {
		a.mustDo(http.StatusOK, "POST", "/v1/events", demo, "application/json", `[{"type":"order","amount":1,"currency":"EUR"}]`)
	}
	_ = a.cmd.Process.Kill()
	_ = a.cmd.Wait()
	killed := time.Now()
	// Through the second server: every write, once the first server's
	// pending batches are folded by the adoption at the latest.
	waitFor(t, ttl+ttl/3+10*time.Second, "the second server reads every write of the killed one", func() bool {
		return b.query(demo, "revenue", "from=now-1h&step=1h", "currency")["EUR"] == writes
	})
	readable := time.Since(killed)
	// In the store itself, without the first server.
	store, err := influx.Open(influxURL, &influx.Options{Database: db, WriteAPI: influx.WriteV1})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	waitFor(t, ttl+ttl/3+30*time.Second, "the killed server's writes reach the store", func() bool {
		return storeRevenueByMerchant(t, store)[httpapi.DemoMerchant] == writes
	})
	t.Logf("the killed server's %d writes: readable through the other %v after the SIGKILL, in the store after %v (lease TTL %v)", writes, readable.Round(time.Millisecond), time.Since(killed).Round(time.Millisecond), ttl)
	if got := b.query(demo, "revenue", "from=now-1h&step=1h", "currency")["EUR"]; got != writes {
		t.Errorf("after the takeover the second server reads %v, want %d", got, writes)
	}
}
