package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hourglass-io/hourglass/internal/servertest"
)

// failStart runs the server with args, which must fail its start: it must
// exit non-zero with one error line naming flag. It returns the line.
func failStart(t *testing.T, flag string, args ...string) string {
	t.Helper()
	cmd := exec.Command(serverBin, append([]string{"-addr", "127.0.0.1:0", "-data", t.TempDir()}, args...)...)
	cmd.Env = cleanEnv()
	stderr := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = stderr, stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("%v: still starting after 60 s; output:\n%s", args, stderr)
	}
	t.Logf("%v: exited after %v: %s", args, time.Since(start).Round(time.Millisecond), strings.TrimSpace(stderr.String()))
	if err == nil {
		t.Fatalf("%v: the start succeeded; output:\n%s", args, stderr)
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(stderr.String()), "\n") {
		if strings.HasPrefix(l, "server: ") {
			lines = append(lines, l)
		}
	}
	if len(lines) != 1 || !strings.Contains(lines[0], flag) {
		t.Fatalf("%v: want one line \"server: ...\" naming %s; output:\n%s", args, flag, stderr)
	}
	return lines[0]
}

// deadURL returns an address nobody listens on, as scheme://127.0.0.1:port.
func deadURL(t *testing.T, scheme string) string {
	return fmt.Sprintf("%s127.0.0.1:%d", scheme, servertest.FreePort(t))
}

// TestStartChecksStore: a store that cannot be reached, is no InfluxDB, or
// lacks the write API that -influx-write-api names stops the start; an
// empty -influx-write-api detects v1 on InfluxDB 1.6 and starts.
func TestStartChecksStore(t *testing.T) {
	failStart(t, "-influx-url", "-store", "influx", "-influx-url", deadURL(t, "http://"))
	notInflux := httptest.NewServer(http.NotFoundHandler())
	defer notInflux.Close()
	failStart(t, "-influx-url", "-store", "influx", "-influx-url", notInflux.URL)

	u := servertest.InfluxURL(t)
	failStart(t, "-influx-write-api v2", "-store", "influx", "-influx-url", u, "-influx-write-api", "v2", "-influx-db", "hg_check_v2")
	p := startServer(t, t.TempDir(), "-store", "influx", "-influx-url", u, "-influx-db", "hg_check_auto")
	if !strings.Contains(strings.Join(p.lines, "\n"), "write API v1") {
		t.Errorf("banner does not say the detected write API v1:\n%s", strings.Join(p.lines, "\n"))
	}
	p.stop()
}

// TestStartChecksCache: Redis unreachable or refusing the password.
func TestStartChecksCache(t *testing.T) {
	failStart(t, "-redis-addr", "-cache", "redis", "-redis-addr", deadURL(t, ""))
	r := servertest.StartRedis(t)
	c := redis.NewClient(&redis.Options{Addr: r.Addr})
	err := c.ConfigSet(context.Background(), "requirepass", "right").Err()
	c.Close()
	if err != nil {
		t.Fatal(err)
	}
	failStart(t, "-redis-password", "-cache", "redis", "-redis-addr", r.Addr, "-redis-password", "wrong")
}

// TestStartChecksArchives: an archive directory that cannot be written, an
// S3 server nobody runs, S3 with a wrong secret key.
func TestStartChecksArchives(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	failStart(t, "-archive-dirs", "-archive-dirs", filepath.Join(file, "archive"))
	failStart(t, "-s3-endpoint", "-s3-bucket", "hg-check", "-s3-endpoint", deadURL(t, ""), "-s3-access-key", "k", "-s3-secret-key", "s")
	endpoint, key, _ := servertest.S3(t)
	failStart(t, "-s3-secret-key", "-s3-bucket", "hg-check", "-s3-endpoint", endpoint, "-s3-access-key", key, "-s3-secret-key", "wrong-secret")
}

// TestStartChecksAMQP: RabbitMQ unreachable or refusing the credentials.
func TestStartChecksAMQP(t *testing.T) {
	failStart(t, "-amqp-url", "-amqp-url", deadURL(t, "amqp://guest:guest@")+"/")
	u, err := url.Parse(servertest.AMQP(t))
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(u.User.Username(), "wrong-password")
	line := failStart(t, "-amqp-url", "-amqp-url", u.String())
	if strings.Contains(line, "wrong-password") {
		t.Errorf("the error shows the password: %s", line)
	}
}

// startInfluxAuth starts a private influxd with authentication on and an
// admin user "admin" with password "secret", and returns its URL. Without
// influxd the test is skipped (failed in CI).
func startInfluxAuth(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("influxd"); err != nil {
		servertest.Missing(t, "influxd", "install Debian's influxdb package")
	}
	dir := t.TempDir()
	port, rpc := servertest.FreePort(t), servertest.FreePort(t)
	conf := fmt.Sprintf(`reporting-disabled = true
bind-address = "127.0.0.1:%d"
[meta]
  dir = %q
[data]
  dir = %q
  wal-dir = %q
  query-log-enabled = false
[http]
  bind-address = "127.0.0.1:%d"
  auth-enabled = true
  log-enabled = false
[logging]
  level = "warn"
[monitor]
  store-enabled = false
[continuous_queries]
  enabled = false
`, rpc, filepath.Join(dir, "meta"), filepath.Join(dir, "data"), filepath.Join(dir, "wal"), port)
	if err := os.WriteFile(filepath.Join(dir, "influxdb.conf"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("influxd", "run", "-config", filepath.Join(dir, "influxdb.conf"))
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	client := &http.Client{Timeout: time.Second}
	defer client.CloseIdleConnections()
	for i := 0; ; i++ {
		// The first user may be created without credentials.
		resp, err := client.PostForm(base+"/query", url.Values{"q": {"CREATE USER admin WITH PASSWORD 'secret' WITH ALL PRIVILEGES"}})
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return base
			}
		}
		if i == 300 {
			t.Fatalf("influxd with auth did not accept the admin user within 30 s: %v; log:\n%s", err, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestStartChecksInfluxCredentials: against InfluxDB 1.6 with
// authentication, a wrong or missing -influx-token stops the start naming
// it; the right user:password starts the server (v1 detected, basic auth).
func TestStartChecksInfluxCredentials(t *testing.T) {
	u := startInfluxAuth(t)
	failStart(t, "-influx-token", "-store", "influx", "-influx-url", u, "-influx-token", "admin:wrong")
	failStart(t, "-influx-token", "-store", "influx", "-influx-url", u)
	p := startServer(t, t.TempDir(), "-store", "influx", "-influx-url", u, "-influx-token", "admin:secret")
	p.stop()
}
