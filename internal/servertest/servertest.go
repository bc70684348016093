// Package servertest finds the real servers that integration tests need
// (Redis, InfluxDB, S3, RabbitMQ) and starts private redis-server processes.
//
// scripts/test.sh starts the servers on free local ports and exports their
// addresses in HOURGLASS_* environment variables. Without them a test that
// needs a server is skipped with a message saying what to start; when CI=true
// it fails instead, so a missing server can never turn CI green.
package servertest

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// Environment variables read by this package.
const (
	EnvRedis  = "HOURGLASS_REDIS_ADDR"  // host:port of a Redis the tests may flush
	EnvInflux = "HOURGLASS_INFLUX_URL"  // http://host:port of an InfluxDB 1.x
	EnvS3     = "HOURGLASS_S3_ENDPOINT" // host:port of an S3 server (versitygw)
	EnvS3Key  = "HOURGLASS_S3_ACCESS_KEY"
	EnvS3Sec  = "HOURGLASS_S3_SECRET_KEY"
	EnvAMQP   = "HOURGLASS_AMQP_URL" // amqp://user:pass@host:port/
	// EnvPromtool is the path of a promtool binary (Debian's prometheus
	// package: apt-get download prometheus; dpkg -x).
	EnvPromtool = "HOURGLASS_PROMTOOL_BIN"
)

// InCI reports whether the tests run in CI (CI=true), where missing servers
// are failures.
func InCI() bool { return os.Getenv("CI") == "true" }

// Missing skips the test, or fails it in CI, saying what is missing and how
// to provide it.
func Missing(t testing.TB, what, how string) {
	t.Helper()
	msg := fmt.Sprintf("%s is not available: %s (scripts/test.sh starts it)", what, how)
	if InCI() {
		t.Fatal(msg + "; CI=true, so this is a failure")
	}
	t.Skip(msg)
}

// Reachable reports whether a TCP connection to addr succeeds within a
// second.
func Reachable(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	_ = c.Close()
	return true
}

// Redis returns the address of a shared Redis server for tests: $HOURGLASS_REDIS_ADDR,
// or 127.0.0.1:6379 when that answers. Tests must use their own key prefix.
func Redis(t testing.TB) string {
	t.Helper()
	addr := os.Getenv(EnvRedis)
	if addr == "" {
		addr = "127.0.0.1:6379"
	}
	if !Reachable(addr) {
		Missing(t, "Redis at "+addr, "set "+EnvRedis+" or start redis-server")
	}
	return addr
}

// InfluxURL returns the URL of the test InfluxDB server ($HOURGLASS_INFLUX_URL).
func InfluxURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv(EnvInflux)
	if u == "" {
		Missing(t, "InfluxDB", "set "+EnvInflux+" to the URL of an InfluxDB 1.x server")
		return ""
	}
	if !Reachable(strings.TrimPrefix(strings.TrimPrefix(u, "http://"), "https://")) {
		Missing(t, "InfluxDB at "+u, "it does not answer")
	}
	return u
}

// S3 returns the endpoint (host:port) and credentials of the test S3 server.
func S3(t testing.TB) (endpoint, accessKey, secretKey string) {
	t.Helper()
	endpoint = os.Getenv(EnvS3)
	if endpoint == "" {
		Missing(t, "an S3 server", "set "+EnvS3+", "+EnvS3Key+" and "+EnvS3Sec+" (versitygw)")
		return "", "", ""
	}
	if !Reachable(endpoint) {
		Missing(t, "S3 server at "+endpoint, "it does not answer")
	}
	return endpoint, os.Getenv(EnvS3Key), os.Getenv(EnvS3Sec)
}

// Promtool returns the path of promtool: $HOURGLASS_PROMTOOL_BIN, or
// promtool on the PATH.
func Promtool(t testing.TB) string {
	t.Helper()
	p := os.Getenv(EnvPromtool)
	if p == "" {
		p, _ = exec.LookPath("promtool")
	}
	if p == "" {
		Missing(t, "promtool", "set "+EnvPromtool+" to a promtool binary (apt-get download prometheus; dpkg -x)")
		return ""
	}
	if _, err := os.Stat(p); err != nil {
		Missing(t, "promtool at "+p, err.Error())
	}
	return p
}

// AMQP returns the URL of the RabbitMQ server: $HOURGLASS_AMQP_URL or
// amqp://guest:guest@127.0.0.1:5672/.
func AMQP(t testing.TB) string {
	t.Helper()
	u := os.Getenv(EnvAMQP)
	if u == "" {
		u = "amqp://guest:guest@127.0.0.1:5672/"
	}
	hostport := u[strings.LastIndex(u, "@")+1:]
	hostport = strings.TrimSuffix(hostport[:strings.IndexByte(hostport+"/", '/')], "/")
	if !Reachable(hostport) {
		Missing(t, "RabbitMQ at "+hostport, "set "+EnvAMQP+" or start rabbitmq-server")
	}
	return u
}

// AMQPQueues returns a name prefix unique to this test, "hgtest.<kind>.<random>",
// and deletes the queues named prefix+suffix for each suffix on the RabbitMQ
// server at url when the test ends (the shared broker keeps no leftovers).
func AMQPQueues(t testing.TB, url, kind string, suffixes ...string) string {
	t.Helper()
	var rb [4]byte
	_, _ = rand.Read(rb[:])
	prefix := "hgtest." + kind + "." + hex.EncodeToString(rb[:])
	t.Cleanup(func() {
		conn, err := amqp.Dial(url)
		if err != nil {
			t.Errorf("cleanup: %v", err)
			return
		}
		defer conn.Close()
		ch, err := conn.Channel()
		if err != nil {
			t.Errorf("cleanup: %v", err)
			return
		}
		for _, s := range suffixes {
			if _, err := ch.QueueDelete(prefix+s, false, false, false); err != nil {
				t.Errorf("cleanup: delete queue %s: %v", prefix+s, err)
			}
		}
	})
	return prefix
}

// StartListening starts cmd (its Stderr, if any, set by the caller),
// kills it when the test ends unless it was waited for, and returns the
// rest of its first stdout line that starts with prefix (where it
// listens). It fails the test, with stderr's content, when the process
// exits first or prints no such line within a minute. Later stdout is
// discarded.
func StartListening(t testing.TB, cmd *exec.Cmd, prefix string, stderr fmt.Stringer) string {
	t.Helper()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if rest, ok := strings.CutPrefix(sc.Text(), prefix); ok {
				lines <- rest
				break
			}
		}
		close(lines)
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case rest, ok := <-lines:
		if !ok {
			_ = cmd.Wait()
			t.Fatalf("%s exited before printing %q:\n%s", cmd.Path, prefix, stderr)
		}
		return rest
	case <-time.After(time.Minute):
		t.Fatalf("%s printed no %q within a minute", cmd.Path, prefix)
	}
	return ""
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// RedisProcess is a private redis-server started by StartRedis.
type RedisProcess struct {
	Addr string
	Port int
	Dir  string
	cmd  *exec.Cmd
	args []string
}

// StartRedis starts redis-server on a free port with its data in a
// temporary directory, plus extra config arguments (e.g. "--appendonly",
// "yes"). The server is killed when the test ends. Without a redis-server
// binary the test is skipped (failed in CI).
func StartRedis(t testing.TB, extra ...string) *RedisProcess {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		Missing(t, "redis-server", "install Debian's redis-server package")
	}
	p := &RedisProcess{Dir: t.TempDir()}
	p.Port = FreePort(t)
	p.Addr = "127.0.0.1:" + strconv.Itoa(p.Port)
	p.args = append([]string{"--port", strconv.Itoa(p.Port), "--bind", "127.0.0.1", "--dir", p.Dir, "--save", "", "--appendonly", "no", "--logfile", filepath.Join(p.Dir, "redis.log")}, extra...)
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Kill)
	return p
}

// Start starts (or restarts) the server with its arguments and waits until
// it answers PING.
func (p *RedisProcess) Start() error {
	p.cmd = exec.Command("redis-server", p.args...)
	if err := p.cmd.Start(); err != nil {
		return fmt.Errorf("start redis-server: %w", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if pingRedis(p.Addr) {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	p.Kill()
	log, _ := os.ReadFile(filepath.Join(p.Dir, "redis.log"))
	return fmt.Errorf("redis-server on %s did not answer PING within 10s; log:\n%s", p.Addr, log)
}

// Kill stops the server with SIGKILL and waits for it to exit.
func (p *RedisProcess) Kill() {
	if p.cmd != nil && p.cmd.Process != nil {
		_ = p.cmd.Process.Kill()
		_ = p.cmd.Wait()
		p.cmd = nil
	}
}

func pingRedis(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return false
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && strings.HasPrefix(line, "+PONG")
}

// Context returns a context for a test that is cancelled when the test
// ends or after d.
func Context(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
