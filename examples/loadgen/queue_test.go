package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hourglass-io/hourglass/internal/servertest"
)

// TestQueueMode runs the real server binary with its AMQP ingest on the
// machine's RabbitMQ (on queues of its own) and loadgen's queue mode
// against it for 300 operations: every event published (and confirmed)
// arrives in the server's figures, counted once, and the reads sent by
// request/reply are answered.
func TestQueueMode(t *testing.T) {
	amqpURL := servertest.AMQP(t)
	wq, rq := testQueues(t, amqpURL)
	dir := t.TempDir()
	bin := filepath.Join(t.TempDir(), "server")
	if out, err := exec.Command("go", "build", "-o", bin, "../server").CombinedOutput(); err != nil {
		t.Fatalf("go build ../server: %v\n%s", err, out)
	}
	srv := startServer(t, bin, "-addr", "127.0.0.1:0", "-data", dir, "-amqp-url", amqpURL, "-amqp-write-queue", wq, "-amqp-read-queue", rq)

	var stdout, stderr bytes.Buffer
	const merchants = 3
	err := run(context.Background(), []string{"-queue", amqpURL, "-write-queue", wq, "-read-queue", rq,
		"-merchants", strconv.Itoa(merchants), "-concurrency", "4", "-batch", "10", "-requests", "300", "-duration", "2m"}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("loadgen: %v\n%s", err, stderr.String())
	}
	out := stdout.String()
	t.Logf("loadgen:\n%s", out)
	if !strings.Contains(stderr.String(), "100%") {
		t.Errorf("no progress bar reaching 100%% on stderr: %q", stderr.String())
	}
	m := regexp.MustCompile(`(?m)^write +(\d+) .*\n^read +(\d+) `).FindStringSubmatch(out)
	if m == nil || strings.Contains(out, "errors:") {
		t.Fatalf("report without writes and reads, or with errors:\n%s", out)
	}
	writes, _ := strconv.Atoi(m[1])
	reads, _ := strconv.Atoi(m[2])
	if writes != 200 || reads != 100 {
		t.Errorf("%d writes and %d reads confirmed, want 200 and 100", writes, reads)
	}
	published := writes * 10

	// The events, counted by the server: each event makes one views,
	// orders or refunds point.
	admin := srv.adminToken(dir)
	toks := make([]string, merchants)
	for i := range toks {
		toks[i] = srv.merchantToken(admin, merchantID(i))
	}
	deadline := time.Now().Add(time.Minute)
	for {
		got := 0.0
		for _, tok := range toks {
			for _, metric := range []string{"views", "orders", "refunds"} {
				got += srv.total(tok, metric, "from=now-1h&step=1h&agg=count")
			}
		}
		if int(got) == published {
			break
		}
		if int(got) > published || time.Now().After(deadline) {
			t.Fatalf("the server counts %v events, loadgen published %d", got, published)
		}
		time.Sleep(100 * time.Millisecond)
	}
	srv.stop()
}

// testQueues returns unique write and read queue names and deletes them
// (and the dead-letter queue) when the test ends.
func testQueues(t *testing.T, url string) (string, string) {
	base := servertest.AMQPQueues(t, url, "loadgen", ".w", ".r", ".w.dead")
	return base + ".w", base + ".r"
}

// serverProc is a running server binary.
type serverProc struct {
	t      *testing.T
	cmd    *exec.Cmd
	url    string
	stderr *bytes.Buffer
}

func startServer(t *testing.T, bin string, args ...string) *serverProc {
	t.Helper()
	cmd := exec.Command(bin, args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "HOURGLASS_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	p := &serverProc{t: t, cmd: cmd, stderr: &bytes.Buffer{}}
	cmd.Stderr = p.stderr // read only after the process exits
	p.url = servertest.StartListening(t, cmd, "hourglass example server listening on ", p.stderr)
	return p
}

// stop sends SIGTERM and waits for a clean exit.
func (p *serverProc) stop() {
	p.t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		p.t.Fatal(err)
	}
	if err := p.cmd.Wait(); err != nil {
		p.t.Fatalf("server exit: %v\n%s", err, p.stderr.String())
	}
}

func (p *serverProc) do(method, path, token, body string) []byte {
	p.t.Helper()
	req, err := http.NewRequest(method, p.url+path, strings.NewReader(body))
	if err != nil {
		p.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		p.t.Fatalf("%s %s: %s %s", method, path, resp.Status, b)
	}
	return b
}

func (p *serverProc) adminToken(dir string) string {
	p.t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "tokens.json"))
	if err != nil {
		p.t.Fatal(err)
	}
	var f struct {
		Admin string `json:"admin_token"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		p.t.Fatal(err)
	}
	return f.Admin
}

func (p *serverProc) merchantToken(admin, merchant string) string {
	p.t.Helper()
	var r struct{ Token string }
	if err := json.Unmarshal(p.do("POST", "/v1/admin/merchants", admin, fmt.Sprintf(`{"merchant":%q}`, merchant)), &r); err != nil {
		p.t.Fatal(err)
	}
	return r.Token
}

// total returns the sum of the totals of a metric's series.
func (p *serverProc) total(token, metric, params string) float64 {
	p.t.Helper()
	var r struct {
		Series []struct{ Total float64 }
	}
	if err := json.Unmarshal(p.do("GET", "/v1/metrics/"+metric+"?"+params, token, ""), &r); err != nil {
		p.t.Fatal(err)
	}
	sum := 0.0
	for _, s := range r.Series {
		sum += s.Total
	}
	return sum
}
