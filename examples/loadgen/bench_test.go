package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hourglass-io/hourglass/internal/servertest"
)

// TestBench runs "loadgen bench" against the real server binary (and the
// test InfluxDB when there is one), then its sustained mode briefly: the
// server counts every point of the batches, and both tables come out.
func TestBench(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(t.TempDir(), "server")
	if out, err := exec.Command("go", "build", "-o", bin, "../server").CombinedOutput(); err != nil {
		t.Fatalf("go build ../server: %v\n%s", err, out)
	}
	srv := startServer(t, bin, "-addr", "127.0.0.1:0", "-data", dir, "-rate", "0", "-flush-interval", "1h")
	defer srv.stop()
	args := []string{"bench", "-hourglass", srv.url, "-tokens", filepath.Join(dir, "tokens.json"),
		"-merchants", "3", "-series", "5", "-batches", "6", "-lines", "50", "-queries", "3"}
	if u := os.Getenv(servertest.EnvInflux); u != "" {
		args = append(args, "-influx", u, "-influx-db", fmt.Sprintf("loadgen_bench_%d", os.Getpid()))
	}
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), args, &stdout, &stderr); err != nil {
		t.Fatalf("loadgen bench: %v\n%s", err, stderr.String())
	}
	t.Logf("burst:\n%s", stdout.String())
	if !strings.Contains(stdout.String(), "| hourglass `/write` |") {
		t.Errorf("no hourglass row in:\n%s", stdout.String())
	}
	if n := pointsWritten(t, srv.url); n != 6*50*2 {
		t.Errorf("the server acknowledged %v points, want %d", n, 6*50*2)
	}
	stdout.Reset()
	err := run(context.Background(), []string{"bench", "-hourglass", srv.url, "-tokens", filepath.Join(dir, "tokens.json"),
		"-merchants", "3", "-series", "5", "-batches", "6", "-lines", "50", "-sustain", "1s", "-flush-interval", "1h", "-pid", fmt.Sprint(srv.cmd.Process.Pid)}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("loadgen bench -sustain: %v\n%s", err, stderr.String())
	}
	t.Logf("sustained:\n%s", stdout.String())
	if !strings.Contains(stdout.String(), "| sustained, points/s |") || !strings.Contains(stdout.String(), "MiB |") {
		t.Errorf("no sustained table in:\n%s", stdout.String())
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
