package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/tsstore/promtsdb"
)

// TestReplicas runs the real binary on a data dir with history, then with
// -replicas 2 at ack primary+1: the new standbys are seeded with the
// history, writes and flushes reach them, reads (spread over the replicas)
// give the same figures; a standby's directory deleted while the server
// runs does not stop it serving, and on the next start the lost standby is
// rebuilt from the primary.
func TestReplicas(t *testing.T) {
	dir := t.TempDir()
	p := startServer(t, dir)
	admin := adminToken(t, dir)
	tok := p.merchantToken(admin, "shop1")
	order := func(p *serverProc, amount float64) {
		p.mustDo(http.StatusOK, "POST", "/v1/events", tok, "application/json", fmt.Sprintf(`[{"type":"order","amount":%g,"currency":"EUR"}]`, amount))
		p.mustDo(http.StatusOK, "POST", "/v1/admin/flush", admin, "", "")
	}
	revenue := func(p *serverProc, want float64, when string) {
		t.Helper()
		for range 9 { // reads go to any healthy replica: ask each several times
			if got := p.query(tok, "revenue", "from=now-1h&step=1h", "currency"); !equalFigures(got, map[string]float64{"EUR": want}) {
				t.Fatalf("%s: revenue %v, want EUR %v", when, got, want)
			}
		}
	}
	order(p, 10)
	p.stop()

	args := []string{"-replicas", "2", "-ack", "primary+1"}
	p = startServer(t, dir, args...)
	banner := strings.Join(p.lines, "\n")
	for _, want := range []string{"standby standby-1: promtsdb in " + filepath.Join(dir, "tsdb-standby-1"), "replication: 2 standbys, ack primary+1"} {
		if !strings.Contains(banner, want) {
			t.Errorf("banner lacks %q:\n%s", want, banner)
		}
	}
	if n := strings.Count(p.stderr.String(), "had no fence file (new or lost): seeded with a copy of primary"); n != 2 {
		t.Errorf("%d standbys seeded, want 2; stderr:\n%s", n, p.stderr.String())
	}
	revenue(p, 10, "history, after adding the standbys")
	order(p, 5)
	revenue(p, 15, "after a replicated flush")
	metrics := p.mustDo(http.StatusOK, "GET", "/metrics", "", "", "")
	for _, r := range []string{"primary", "standby-1", "standby-2"} {
		if !strings.Contains(metrics, `hourglass_replicate_healthy{replica="`+r+`"} 1`) {
			t.Errorf("/metrics does not show replica %s healthy", r)
		}
	}

	// A standby's directory deleted under the running server.
	if err := os.RemoveAll(filepath.Join(dir, "tsdb-standby-1")); err != nil {
		t.Fatal(err)
	}
	order(p, 1)
	revenue(p, 16, "with standby-1's directory deleted")
	p.stop()

	p = startServer(t, dir, args...)
	if !strings.Contains(p.stderr.String(), "replica standby-1 ("+filepath.Join(dir, "tsdb-standby-1")+") had no fence file (new or lost): seeded with a copy of primary") {
		t.Errorf("the lost standby was not rebuilt; stderr:\n%s", p.stderr.String())
	}
	revenue(p, 16, "after the restart that rebuilt standby-1")
	order(p, 4)
	p.stop()

	// Every replica holds every figure.
	for _, d := range []string{"tsdb", "tsdb-standby-1", "tsdb-standby-2"} {
		if got := storedRevenue(t, filepath.Join(dir, d)); got != 20 {
			t.Errorf("revenue in %s: %v, want 20", d, got)
		}
	}
}

// TestReplicaFlags: -ack needs enough standbys, -replicas is not negative.
func TestReplicaFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-replicas", "1", "-ack", "primary+2"}, "-ack primary+2 needs 2 standbys; -replicas and -standby-influx-urls give 1"},
		{[]string{"-replicas", "1", "-ack", "all", "-standby-influx-urls", "http://127.0.0.1:1,http://127.0.0.1:2"}, ""},
		{[]string{"-replicas", "2", "-ack", "most"}, `-ack "most": want primary, primary+K (K standbys), quorum or all`},
		{[]string{"-replicas", "-1"}, "-replicas -1"},
		{[]string{"-processor", "events/0"}, `-processor "events/0": want one of [events/1 events/2]`},
	} {
		_, err := parseConfig(c.args, io.Discard)
		if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("parseConfig(%q): %v, want %q", c.args, err, c.want)
		}
	}
}

// storedRevenue opens the promtsdb directory dir and returns the sum of
// its revenue cells of the last two hours.
func storedRevenue(t *testing.T, dir string) float64 {
	t.Helper()
	s, err := promtsdb.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	now := time.Now()
	res, err := s.Query(context.Background(), tsstore.Query{
		Metric: "revenue", From: tsstore.CellStart(tsstore.Millis(now.Add(-2*time.Hour)), time.Hour), To: tsstore.CellStart(tsstore.Millis(now), time.Hour) + 2*time.Hour.Milliseconds(), Step: time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, sr := range res.Series {
		for _, b := range sr.Buckets {
			sum += b.Sum
		}
	}
	return sum
}
