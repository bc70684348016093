package main

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/hourglass-io/hourglass/internal/servertest"
)

// -pprof serves Go's profiling endpoints on their own address, and only
// there.
func TestPprof(t *testing.T) {
	addr := fmt.Sprintf("127.0.0.1:%d", servertest.FreePort(t))
	p := startServer(t, t.TempDir(), "-pprof", addr)
	defer p.stop()
	resp, err := http.Get("http://" + addr + "/debug/pprof/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "-pprof") {
		t.Errorf("GET %s/debug/pprof/cmdline: %s %q, want 200 and the server's command line", addr, resp.Status, body)
	}
	if code, _, _ := p.do("GET", "/debug/pprof/cmdline", "", "", ""); code == http.StatusOK {
		t.Errorf("the API's address serves /debug/pprof/: %d", code)
	}
}
