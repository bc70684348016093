package servertest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// StartSentinel starts a Redis Sentinel on a free port that monitors the
// primary at 127.0.0.1:primaryPort as master "hg", with a quorum of one and
// a fast failover (down after 500 ms), waits until it knows replicas
// connected replicas of it, and returns its address. It is killed when the
// test ends. Without a redis-server binary the test is skipped (failed in
// CI).
func StartSentinel(t testing.TB, primaryPort, replicas int) string {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		Missing(t, "redis-server", "install Debian's redis-server package")
	}
	dir := t.TempDir()
	port := FreePort(t)
	conf := filepath.Join(dir, "sentinel.conf")
	cfg := fmt.Sprintf("port %d\nbind 127.0.0.1\ndir %s\nlogfile %s\n"+
		"sentinel monitor hg 127.0.0.1 %d 1\n"+
		"sentinel down-after-milliseconds hg 500\n"+
		"sentinel failover-timeout hg 4000\n", port, dir, filepath.Join(dir, "sentinel.log"), primaryPort)
	if err := os.WriteFile(conf, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("redis-server", conf, "--sentinel")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	addr := "127.0.0.1:" + strconv.Itoa(port)
	sc := redis.NewSentinelClient(&redis.Options{Addr: addr})
	defer sc.Close()
	// Sentinel learns the replicas from the primary's INFO.
	deadline := time.Now().Add(15 * time.Second)
	for {
		rs, err := sc.Replicas(context.Background(), "hg").Result()
		connected := 0
		for _, r := range rs {
			if !strings.Contains(r["flags"], "disconnected") {
				connected++
			}
		}
		if err == nil && connected == replicas {
			return addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("the sentinel at %s does not know %d connected replicas within 15 s (%v, %v)", addr, replicas, rs, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
