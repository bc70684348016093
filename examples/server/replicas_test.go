package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hourglass-io/hourglass/internal/servertest"
	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/tsstore/influx"
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

// TestReplicasInflux: a promtsdb primary with an InfluxDB standby at ack
// level all: a flush returns once InfluxDB has the cells too.
func TestReplicasInflux(t *testing.T) {
	url := servertest.InfluxURL(t)
	var rb [4]byte
	_, _ = rand.Read(rb[:])
	db := "hgtest_replicas_" + hex.EncodeToString(rb[:])
	dir := t.TempDir()
	// The test server is Debian's InfluxDB 1.6: /write, not /api/v2/write.
	p := startServer(t, dir, "-standby-influx-urls", url, "-influx-db", db, "-influx-write-api", "v1", "-ack", "all")
	if banner := strings.Join(p.lines, "\n"); !strings.Contains(banner, "standby influx-1: InfluxDB "+url+" database "+db) {
		t.Errorf("banner lacks the InfluxDB standby:\n%s", banner)
	}
	admin := adminToken(t, dir)
	tok := p.merchantToken(admin, "shop1")
	p.mustDo(http.StatusOK, "POST", "/v1/events", tok, "application/json", `[{"type":"order","amount":7,"currency":"EUR"},{"type":"refund","amount":2,"currency":"EUR"}]`)
	p.mustDo(http.StatusOK, "POST", "/v1/admin/flush", admin, "", "")
	if got := p.query(tok, "revenue", "from=now-1h&step=1h", "currency"); !equalFigures(got, map[string]float64{"EUR": 5}) {
		t.Errorf("revenue %v, want EUR 5", got)
	}
	p.stop()

	st, err := influx.Open(url, &influx.Options{Database: db})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Now()
	res, err := st.Query(context.Background(), tsstore.Query{
		Metric: "revenue", From: tsstore.CellStart(tsstore.Millis(now.Add(-2*time.Hour)), time.Hour), To: tsstore.CellStart(tsstore.Millis(now), time.Hour) + time.Hour.Milliseconds(), Step: time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, sr := range res.Series {
		for _, b := range sr.Buckets {
			sum += b.Sum
		}
	}
	if sum != 5 {
		t.Errorf("revenue in the InfluxDB standby: %v, want 5", sum)
	}
}

// TestReplicasStandbyDown: an InfluxDB standby that is down from the start
// (nothing listens on its port) does not stop the server: at ack level
// primary+1 the local standby acknowledges, the dead one's writes are
// hinted, reads give every figure, and /metrics shows it unhealthy with
// pending hints.
func TestReplicasStandbyDown(t *testing.T) {
	dead := fmt.Sprintf("http://127.0.0.1:%d", servertest.FreePort(t))
	dir := t.TempDir()
	p := startServer(t, dir, "-replicas", "1", "-standby-influx-urls", dead, "-influx-write-api", "v1", "-ack", "primary+1")
	if !strings.Contains(p.stderr.String(), "standby is down at start") {
		t.Errorf("no warning about the dead standby:\n%s", p.stderr.String())
	}
	admin := adminToken(t, dir)
	tok := p.merchantToken(admin, "shop1")
	for i := range 3 {
		p.mustDo(http.StatusOK, "POST", "/v1/events", tok, "application/json", `[{"type":"order","amount":10,"currency":"EUR"}]`)
		p.mustDo(http.StatusOK, "POST", "/v1/admin/flush", admin, "", "")
		for range 6 {
			if got := p.query(tok, "revenue", "from=now-1h&step=1h", "currency"); !equalFigures(got, map[string]float64{"EUR": float64(10 * (i + 1))}) {
				t.Fatalf("revenue after %d flushes with a standby down: %v", i+1, got)
			}
		}
	}
	deadline := time.Now().Add(time.Minute)
	for {
		m := p.mustDo(http.StatusOK, "GET", "/metrics", "", "", "")
		if strings.Contains(m, `hourglass_replicate_healthy{replica="influx-1"} 0`) &&
			strings.Contains(m, `hourglass_replicate_healthy{replica="standby-1"} 1`) &&
			!strings.Contains(m, `hourglass_replicate_hint_records{replica="influx-1"} 0`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/metrics does not show influx-1 down with hints and standby-1 healthy:\n%s", grepLines(m, "hourglass_replicate_"))
		}
		time.Sleep(200 * time.Millisecond)
	}
	p.stop()
	if got := storedRevenue(t, filepath.Join(dir, "tsdb-standby-1")); got != 30 {
		t.Errorf("revenue in standby-1: %v, want 30", got)
	}
}

// grepLines returns the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
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
		{[]string{"-influx-write-api", "v3"}, `-influx-write-api "v3": want v1 or v2`},
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
