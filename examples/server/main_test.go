package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/hourglass-io/hourglass/httpapi"
)

// serverBin is the server binary the tests run, built once by TestMain.
var serverBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "hourglass-server-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	serverBin = filepath.Join(dir, "server")
	if out, err := exec.Command("go", "build", "-o", serverBin, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		os.Exit(1)
	}
	goleak.VerifyTestMain(runAndRemove{m, dir}) // exits
}

// runAndRemove runs the tests, then removes the binary's directory.
type runAndRemove struct {
	m   *testing.M
	dir string
}

func (r runAndRemove) Run() int {
	code := r.m.Run()
	_ = os.RemoveAll(r.dir)
	return code
}

// serverProc is a running server binary.
type serverProc struct {
	t       *testing.T
	cmd     *exec.Cmd
	url     string
	lines   []string // stdout until the end of the banner
	stderr  *lockedBuffer
	client  *http.Client
	exports map[string]string
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// cleanEnv is the test's environment without HOURGLASS_* variables (which
// scripts/test.sh sets for other packages and which configure the server).
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "HOURGLASS_") {
			env = append(env, kv)
		}
	}
	return env
}

// startServer starts the server binary on a free port with data dir dir and
// reads its banner.
func startServer(t *testing.T, dir string, args ...string) *serverProc {
	t.Helper()
	cmd := exec.Command(serverBin, append([]string{"-addr", "127.0.0.1:0", "-data", dir}, args...)...)
	cmd.Env = cleanEnv()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &serverProc{t: t, cmd: cmd, stderr: &lockedBuffer{}, exports: map[string]string{}}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{}
	p.client = &http.Client{Transport: tr, Timeout: 60 * time.Second}
	t.Cleanup(func() {
		tr.CloseIdleConnections()
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
		if t.Failed() {
			t.Logf("server stderr:\n%s", p.stderr.String())
		}
	})
	done := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		banner := false
		for sc.Scan() {
			l := sc.Text()
			p.lines = append(p.lines, l)
			if u, ok := strings.CutPrefix(l, "hourglass example server listening on "); ok {
				p.url = u
			}
			if k, v, ok := strings.Cut(strings.TrimPrefix(l, "export "), "="); ok && strings.HasPrefix(l, "export ") {
				p.exports[k] = v
			}
			if strings.HasPrefix(l, "tokens: ") || strings.HasPrefix(l, "curl") && l == curlLines[len(curlLines)-1] {
				banner = true
				break
			}
		}
		if !banner {
			done <- fmt.Errorf("server exited before its banner: %v", sc.Err())
			return
		}
		done <- nil
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("%v\nstdout:\n%s\nstderr:\n%s", err, strings.Join(p.lines, "\n"), p.stderr.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("no banner after 60 s; stderr:\n%s", p.stderr.String())
	}
	return p
}

// stop sends SIGTERM and waits for a clean exit.
func (p *serverProc) stop() {
	p.t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		p.t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- p.cmd.Wait() }()
	select {
	case err := <-errc:
		if err != nil {
			p.t.Fatalf("server exit after SIGTERM: %v\nstderr:\n%s", err, p.stderr.String())
		}
	case <-time.After(90 * time.Second):
		p.t.Fatalf("server did not exit within 90 s of SIGTERM")
	}
	if !strings.Contains(p.stderr.String(), "engine closed") {
		p.t.Fatalf("no engine close in the log:\n%s", p.stderr.String())
	}
}

// do sends a request with a bearer token and returns the status, headers and
// body.
func (p *serverProc) do(method, path, token, contentType, body string) (int, http.Header, string) {
	p.t.Helper()
	req, err := http.NewRequest(method, p.url+path, strings.NewReader(body))
	if err != nil {
		p.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := p.client.Do(req)
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		p.t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(b)
}

// mustDo is do that fails the test unless the status is want.
func (p *serverProc) mustDo(want int, method, path, token, contentType, body string) string {
	p.t.Helper()
	code, _, b := p.do(method, path, token, contentType, body)
	if code != want {
		p.t.Fatalf("%s %s: status %d, want %d: %s", method, path, code, want, b)
	}
	return b
}

// query reads a metric and returns the totals of its series by the values
// of the label by (or "" for a series without it).
func (p *serverProc) query(token, metric, params, by string) map[string]float64 {
	p.t.Helper()
	b := p.mustDo(http.StatusOK, "GET", "/v1/metrics/"+metric+"?"+params, token, "", "")
	var r struct {
		Series []struct {
			Labels map[string]string
			Total  float64
		}
	}
	if err := json.Unmarshal([]byte(b), &r); err != nil {
		p.t.Fatalf("%s: %v", b, err)
	}
	out := map[string]float64{}
	for _, s := range r.Series {
		out[s.Labels[by]] += s.Total
	}
	return out
}

// merchantToken asks the admin endpoint for a merchant's token.
func (p *serverProc) merchantToken(admin, merchant string) string {
	p.t.Helper()
	b := p.mustDo(http.StatusOK, "POST", "/v1/admin/merchants", admin, "application/json", `{"merchant":"`+merchant+`"}`)
	var r struct{ Token string }
	if err := json.Unmarshal([]byte(b), &r); err != nil || r.Token == "" {
		p.t.Fatalf("%s: %v", b, err)
	}
	return r.Token
}

// adminToken reads the admin token from the tokens file in dir.
func adminToken(t *testing.T, dir string) string {
	t.Helper()
	f, _, err := httpapi.OpenTokenFile(filepath.Join(dir, "tokens.json"))
	if err != nil {
		t.Fatal(err)
	}
	return f.AdminToken()
}
