package main

import (
	"io"
	"strings"
	"testing"

	"github.com/hourglass-io/hourglass/internal/servertest"
)

// TestPromremoteStore starts the server with -store promremote on the test
// VictoriaMetrics single node: the banner names the store, its read API
// and the force flush it found.
func TestPromremoteStore(t *testing.T) {
	vm := servertest.VictoriaMetricsURL(t)
	p := startServer(t, t.TempDir(), "-store", "promremote", "-promremote-write-url", vm+"/api/v1/write", "-promremote-read-url", vm+"/",
		"-promremote-headers", "X-Scope-OrgID=t1")
	want := "store: remote write to " + vm + "/api/v1/write, reads from " + vm + "/ (export API, flush URLs [" + vm + "/internal/force_flush])"
	if banner := strings.Join(p.lines, "\n"); !strings.Contains(banner, want) {
		t.Errorf("banner lacks %q:\n%s", want, banner)
	}
}

// TestPromremoteFlags: -promremote-headers takes Name=value pairs.
func TestPromremoteFlags(t *testing.T) {
	c, err := parseConfig([]string{"-store", "promremote", "-promremote-headers", "X-Scope-OrgID=t1, X-Other=a=b"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	o, err := c.promremoteOptions()
	if err != nil || o.Headers["X-Scope-OrgID"] != "t1" || o.Headers["X-Other"] != "a=b" {
		t.Errorf("promremoteOptions() = %+v, %v; want both headers", o, err)
	}
	c.prwHeaders = "novalue"
	if _, err := c.promremoteOptions(); err == nil || !strings.Contains(err.Error(), `"novalue" is not Name=value`) {
		t.Errorf("-promremote-headers novalue: got %v", err)
	}
}
