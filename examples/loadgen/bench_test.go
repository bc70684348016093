package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hourglass-io/hourglass/internal/servertest"
)

// TestBench runs "loadgen bench" against the real server binary (and the
// test InfluxDB when there is one), with -events, then its sustained mode
// briefly: the server counts every point of the batches, of the line
// protocol and of the events, and both tables come out.
func TestBench(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(t.TempDir(), "server")
	if out, err := exec.Command("go", "build", "-o", bin, "../server").CombinedOutput(); err != nil {
		t.Fatalf("go build ../server: %v\n%s", err, out)
	}
	srv := startServer(t, bin, "-addr", "127.0.0.1:0", "-data", dir, "-rate", "0", "-flush-interval", "1h")
	defer srv.stop()
	args := []string{"bench", "-hourglass", srv.url, "-tokens", filepath.Join(dir, "tokens.json"),
		"-merchants", "3", "-series", "5", "-batches", "6", "-lines", "50", "-queries", "3", "-events"}
	if u := os.Getenv(servertest.EnvInflux); u != "" {
		args = append(args, "-influx", u, "-influx-db", fmt.Sprintf("loadgen_bench_%d", os.Getpid()))
	}
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), args, &stdout, &stderr); err != nil {
		t.Fatalf("loadgen bench: %v\n%s", err, stderr.String())
	}
	t.Logf("burst:\n%s", stdout.String())
	for _, row := range []string{"| hourglass `/write` |", "| hourglass `/v1/events` |"} {
		if !strings.Contains(stdout.String(), row) {
			t.Errorf("no row %s in:\n%s", row, stdout.String())
		}
	}
	// Two points a line, one an event.
	if n := pointsWritten(t, srv.url); n != 6*50*2+6*50 {
		t.Errorf("the server acknowledged %v points, want %d", n, 6*50*2+6*50)
	}
	stdout.Reset()
	err := run(context.Background(), []string{"bench", "-hourglass", srv.url, "-tokens", filepath.Join(dir, "tokens.json"),
		"-merchants", "3", "-series", "5", "-batches", "6", "-lines", "50", "-sustain", "3s", "-flush-interval", "1h", "-pid", fmt.Sprint(srv.cmd.Process.Pid)}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("loadgen bench -sustain: %v\n%s", err, stderr.String())
	}
	t.Logf("sustained:\n%s", stdout.String())
	if !strings.Contains(stdout.String(), "| sustained, points/s | with no flush running / while flushing |") || !strings.Contains(stdout.String(), "MiB |") {
		t.Errorf("no sustained table in:\n%s", stdout.String())
	}
	// No flush ran (the interval is an hour): every second is one with no
	// flush running.
	if !regexp.MustCompile(`\| [0-9.]+ M \| [0-9.]+ M \([0-9]+ s\) / - \|`).MatchString(stdout.String()) {
		t.Errorf("the sustained row does not give the rate with no flush running alone:\n%s", stdout.String())
	}
}

// pointsWritten reads the server's count of acknowledged points.
func pointsWritten(t *testing.T, url string) float64 {
	t.Helper()
	m, err := scrape(context.Background(), http.DefaultClient, url)
	if err != nil {
		t.Fatal(err)
	}
	return m["hourglass_writeback_points_written_total"]
}

// TestEventBatches checks that the events are the lines: the same merchant
// per batch, and event j of a batch the page and time of its line j.
func TestEventBatches(t *testing.T) {
	o := benchOptions{merchants: 3, series: 5, batches: 4, lines: 20, span: time.Minute}
	now := time.Now()
	lines, events := makeBatches(o, now, false), makeBatches(o, now, true)
	for i := range lines {
		var evs []struct {
			Type, Path string
			Time       int64
		}
		if err := json.Unmarshal(events[i].body, &evs); err != nil {
			t.Fatalf("batch %d: %v\n%s", i, err, events[i].body)
		}
		ls := strings.Split(strings.TrimSuffix(string(lines[i].body), "\n"), "\n")
		if events[i].merchant != lines[i].merchant || len(evs) != len(ls) || events[i].points != len(evs) {
			t.Fatalf("batch %d: %d events (%d points) of merchant %d, %d lines of merchant %d",
				i, len(evs), events[i].points, events[i].merchant, len(ls), lines[i].merchant)
		}
		for j, l := range ls {
			want := fmt.Sprintf("web,merchant=%s,page=%s ", merchantID(lines[i].merchant), evs[j].Path)
			if evs[j].Type != "page_view" || !strings.HasPrefix(l, want) || !strings.HasSuffix(l, fmt.Sprintf("i %d", evs[j].Time)) {
				t.Errorf("batch %d: event %d %+v is not line %q", i, j, evs[j], l)
			}
		}
	}
}
