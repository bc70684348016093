package rediscache_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hourglass-io/hourglass/internal/servertest"
	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/tsstore/memstore"
	"github.com/hourglass-io/hourglass/writeback"
	"github.com/hourglass-io/hourglass/writeback/rediscache"
)

// leaseChildEnv makes the test binary a cluster member (leaseChild)
// instead of running the tests: "<redis addr> <prefix> <cluster> <ttl>".
const leaseChildEnv = "HOURGLASS_LEASE_CHILD"

var quiet = slog.New(slog.DiscardHandler)

// childPoint is the point of the child's write i. Its value is its own:
// a point stored twice shows as another's sum.
func childPoint(i int, now time.Time) tsstore.Point {
	return pt("views", "m"+strconv.Itoa(i%7), now.UnixMilli(), float64(i+1))
}

func pt(metric, merchant string, ts int64, v float64) tsstore.Point {
	return tsstore.Point{Metric: metric, Labels: tsstore.Labels{{Name: "merchant", Value: merchant}}, Timestamp: ts, Value: v}
}

// leaseChild is a cluster member in a child process: it opens its prefix
// with a lease, says "ready", then writes one point at a time through an
// engine, saying "try <i>" before each write, "ack <i>" after each
// acknowledged one and "err <i> <error>" after a failed one, and "lost"
// when it lost its lease; for at most a minute.
func leaseChild(spec string) {
	f := strings.Fields(spec)
	ttl, _ := time.ParseDuration(f[3])
	cl := redis.NewClient(&redis.Options{Addr: f[0]})
	out := bufio.NewWriter(os.Stdout)
	var mu sync.Mutex
	say := func(format string, args ...any) {
		mu.Lock()
		fmt.Fprintf(out, format+"\n", args...)
		_ = out.Flush()
		mu.Unlock()
	}
	ctx := context.Background()
	c, err := rediscache.Open(ctx, cl, &rediscache.Options{Prefix: f[1], Shards: 2, Logger: quiet, Cluster: &rediscache.ClusterOptions{
		Name: f[2], LeaseTTL: ttl, OnLeaseLost: func(error) { say("lost") },
	}})
	if err != nil {
		say("open %v", err)
		os.Exit(1)
	}
	e, err := writeback.New(c, memstore.New(nil), &writeback.Options{FlushInterval: -1, Logger: quiet})
	if err != nil {
		say("engine %v", err)
		os.Exit(1)
	}
	say("ready")
	end := time.Now().Add(time.Minute)
	for i := 0; time.Now().Before(end); i++ {
		say("try %d", i)
		if err := e.Write(ctx, []tsstore.Point{childPoint(i, time.Now())}); err != nil {
			say("err %d %v", i, err)
			time.Sleep(50 * time.Millisecond)
			continue
		}
		say("ack %d", i)
		time.Sleep(3 * time.Millisecond)
	}
	os.Exit(0)
}

// TestLeaseFencesATakenOverCache lets a second cache take a prefix whose
// lease expired (deleted here) while the first still runs: every write,
// seal and commit of the first then fails with tsstore.ErrClosed, it
// reports the lost lease, and the second has the first's batch.
func TestLeaseFencesATakenOverCache(t *testing.T) {
	r := servertest.StartRedis(t)
	cl := redis.NewClient(&redis.Options{Addr: r.Addr})
	defer cl.Close()
	ctx := context.Background()
	lost := make(chan error, 1)
	copts := func(onLost func(error)) *rediscache.Options {
		return &rediscache.Options{Prefix: "a", Shards: 2, Logger: quiet, Cluster: &rediscache.ClusterOptions{
			Name: "fence", LeaseTTL: 600 * time.Millisecond, LeaseWait: -1, OnLeaseLost: onLost,
		}}
	}
	a, err := rediscache.Open(ctx, cl, copts(func(err error) { lost <- err }))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if _, err := rediscache.Open(ctx, cl, copts(nil)); !errors.Is(err, tsstore.ErrConflict) {
		t.Fatalf("Open of a prefix whose lease is held = %v, want ErrConflict", err)
	}
	now := time.Now()
	batch := func(v float64) *writeback.Batch {
		ps := []tsstore.Point{pt("views", "m1", now.UnixMilli(), v)}
		return &writeback.Batch{Raw: ps, Processed: ps, CellWidth: time.Minute}
	}
	if err := a.Append(ctx, batch(1)); err != nil {
		t.Fatal(err)
	}
	if err := cl.Del(ctx, "{a}:lease").Err(); err != nil {
		t.Fatal(err)
	}
	b, err := rediscache.Open(ctx, cl, copts(nil))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if b.Epoch() != a.Epoch()+1 {
		t.Errorf("epochs %d then %d, want consecutive", a.Epoch(), b.Epoch())
	}
	if err := a.Append(ctx, batch(2)); !errors.Is(err, tsstore.ErrClosed) {
		t.Errorf("Append of the fenced cache = %v, want ErrClosed", err)
	}
	if _, _, err := a.Seal(ctx); !errors.Is(err, tsstore.ErrClosed) {
		t.Errorf("Seal of the fenced cache = %v, want ErrClosed", err)
	}
	if err := a.Fold(ctx); err != nil && !errors.Is(err, tsstore.ErrClosed) {
		t.Errorf("Fold of the fenced cache = %v, want nil (nothing pending) or ErrClosed", err)
	}
	select {
	case err := <-lost:
		if !errors.Is(err, tsstore.ErrClosed) {
			t.Errorf("OnLeaseLost(%v), want ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("OnLeaseLost was not called within 10 s")
	}
	sel := tsstore.Selector{Metric: "views", From: now.Add(-time.Hour).UnixMilli(), To: now.Add(time.Hour).UnixMilli()}
	if _, err := a.Cells(ctx, sel); !errors.Is(err, tsstore.ErrClosed) {
		t.Errorf("Cells of the fenced cache = %v, want ErrClosed (its memtables may hold batches the new owner folded)", err)
	}
	cells, err := b.Cells(ctx, sel)
	if err != nil {
		t.Fatal(err)
	}
	if len(cells) != 1 || cells[0].Agg.Sum != 1 {
		t.Errorf("the new owner's cells = %+v, want the first cache's batch alone", cells)
	}
}

// TestTakeover runs a member in a child process that writes without
// pause, stops it (SIGKILL, or SIGSTOP past its lease then SIGCONT), and
// checks that a member of this process adopts its prefix within the lease
// TTL plus a check and the flush, that every write the child acknowledged
// reaches the store exactly once, that its cells are readable through the
// Registry meanwhile, and that the resumed child can no longer write.
func TestTakeover(t *testing.T) {
	for _, mode := range []string{"kill", "stop"} {
		t.Run(mode, func(t *testing.T) { testTakeover(t, mode) })
	}
}

func testTakeover(t *testing.T, mode string) {
	r := servertest.StartRedis(t)
	cl := redis.NewClient(&redis.Options{Addr: r.Addr})
	defer cl.Close()
	ctx := context.Background()
	const ttl = 900 * time.Millisecond
	store := memstore.New(nil)
	adopted := make(chan string, 4)
	c, err := rediscache.Open(ctx, cl, &rediscache.Options{Prefix: "parent", Shards: 2, Logger: quiet, Cluster: &rediscache.ClusterOptions{
		Name: "tk", LeaseTTL: ttl,
		Adopt: func(ctx context.Context, ac *rediscache.Cache) error {
			err := rediscache.FlushAdopted(store, &writeback.Options{Logger: quiet})(ctx, ac)
			adopted <- fmt.Sprint(err)
			return err
		},
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	e, err := writeback.New(c, store, &writeback.Options{FlushInterval: -1, Logger: quiet, Peers: c.Registry(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()

	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), leaseChildEnv+"="+strings.Join([]string{r.Addr, "child", "tk", ttl.String()}, " "))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	lines := make(chan string, 1<<16)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	var acked []int
	// The write the child was making when it was killed or stopped, if
	// it said nothing after trying it: it may be stored or not.
	inFlight := -1
	var lostSeen, fencedSeen bool
	// next reads the child's next line, at most until the deadline.
	next := func(deadline time.Time) (string, bool) {
		select {
		case l, ok := <-lines:
			if !ok {
				return "", false
			}
			switch {
			case strings.HasPrefix(l, "try "):
				inFlight, _ = strconv.Atoi(l[4:])
			case strings.HasPrefix(l, "ack "):
				i, _ := strconv.Atoi(l[4:])
				acked = append(acked, i)
				inFlight = -1
			case l == "lost":
				lostSeen = true
			case strings.HasPrefix(l, "err ") && strings.Contains(l, "closed"):
				fencedSeen = true
			}
			if strings.HasPrefix(l, "err ") {
				inFlight = -1
			}
			return l, true
		case <-time.After(time.Until(deadline)):
			return "", false
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for len(acked) < 100 {
		l, ok := next(deadline)
		if !ok {
			t.Fatalf("the child acknowledged %d writes, then stopped (last line %q)", len(acked), l)
		}
	}
	// The child's folded cells are readable here already.
	waitFor(t, 10*time.Second, "the child's cells through the registry", func() bool {
		return countAll(t, e) > 0
	})

	stopped := time.Now()
	switch mode {
	case "kill":
		_ = cmd.Process.Kill()
		for {
			if _, ok := next(time.Now().Add(5 * time.Second)); !ok {
				break
			}
		}
	case "stop":
		_ = cmd.Process.Signal(syscall.SIGSTOP)
		// Lines already written before the stop.
		for {
			if _, ok := next(time.Now().Add(300 * time.Millisecond)); !ok {
				break
			}
		}
	}
	var took time.Duration
	select {
	case res := <-adopted:
		took = time.Since(stopped)
		if res != "<nil>" {
			t.Fatalf("adoption failed: %s", res)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the child's prefix was not adopted within 30 s")
	}
	waitFor(t, 5*time.Second, "the deregistration of the child's prefix", func() bool {
		ms, err := c.Registry(time.Minute).Members(ctx)
		return err == nil && !slices.Contains(ms, "child")
	})
	t.Logf("%s: adopted and flushed %v after the child stopped (lease TTL %v)", mode, took, ttl)

	if mode == "stop" {
		_ = cmd.Process.Signal(syscall.SIGCONT)
		deadline := time.Now().Add(15 * time.Second)
		for !(lostSeen && fencedSeen) {
			if _, ok := next(deadline); !ok {
				t.Fatalf("the resumed child did not report its lost lease and a fenced write within 15 s (lost %v, fenced %v)", lostSeen, fencedSeen)
			}
		}
		_ = cmd.Process.Kill()
		for {
			if _, ok := next(time.Now().Add(5 * time.Second)); !ok {
				break
			}
		}
	}
	// Every acknowledged write is in the store, once. A killed child's
	// write in flight (taken by Redis, not yet said) may be too; a stopped
	// child's ends in ack or err once it runs again.
	got, want := perMerchant(t, store), aggsOf(acked)
	if mode == "kill" && inFlight >= 0 {
		t.Logf("kill: write %d was in flight", inFlight)
		if withIt := aggsOf(append(slices.Clone(acked), inFlight)); maps.Equal(got, withIt) {
			want = withIt
		}
	}
	if !maps.Equal(got, want) {
		t.Errorf("the store holds, per merchant, %v; want %v (the acknowledged writes)", got, want)
	}
}

// countAll counts the points of every merchant the engine sees.
func countAll(t *testing.T, e *writeback.Engine) uint64 {
	t.Helper()
	now := time.Now()
	res, err := e.Query(context.Background(), tsstore.Query{Metric: "views", From: now.Add(-2 * time.Hour).Truncate(time.Hour).UnixMilli(), To: now.Add(2 * time.Hour).Truncate(time.Hour).UnixMilli(), Step: 4 * time.Hour, GroupBy: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	for _, s := range res.Series {
		for _, b := range s.Buckets {
			n += b.Agg.Count
		}
	}
	return n
}

// perMerchant sums the store's views per merchant.
func perMerchant(t *testing.T, s tsstore.Store) map[string]tsstore.Agg {
	t.Helper()
	now := time.Now()
	res, err := s.Query(context.Background(), tsstore.Query{Metric: "views", From: now.Add(-2 * time.Hour).Truncate(time.Hour).UnixMilli(), To: now.Add(2 * time.Hour).Truncate(time.Hour).UnixMilli(), Step: 4 * time.Hour, GroupBy: []string{"merchant"}})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]tsstore.Agg{}
	for _, s := range res.Series {
		for _, b := range s.Buckets {
			a := out[s.Labels.Get("merchant")]
			a.Merge(b.Agg)
			out[s.Labels.Get("merchant")] = a
		}
	}
	return out
}

// TestReadsWaitForARenewedLease pauses the Redis server past the lease: the
// cache cannot renew it, and its reads fail with ErrUnavailable (another
// cache may be taking the prefix over) until a renewal succeeds again.
func TestReadsWaitForARenewedLease(t *testing.T) {
	r := servertest.StartRedis(t)
	cl := redis.NewClient(&redis.Options{Addr: r.Addr})
	defer cl.Close()
	ctx := context.Background()
	c, err := rediscache.Open(ctx, cl, &rediscache.Options{Prefix: "p", Shards: 1, Logger: quiet, Cluster: &rediscache.ClusterOptions{Name: "w", LeaseTTL: 600 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	info, err := cl.Info(ctx, "server").Result()
	if err != nil {
		t.Fatal(err)
	}
	var pid int
	for _, l := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "process_id:"); ok {
			pid, _ = strconv.Atoi(v)
		}
	}
	if pid == 0 {
		t.Fatalf("no process_id in INFO server:\n%s", info)
	}
	sel := tsstore.Selector{Metric: "views", From: 0, To: time.Now().Add(time.Hour).UnixMilli()}
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	time.Sleep(800 * time.Millisecond)
	_, err = c.Cells(ctx, sel)
	if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	if !errors.Is(err, tsstore.ErrUnavailable) {
		t.Errorf("Cells with the lease expired = %v, want ErrUnavailable", err)
	}
	waitFor(t, 10*time.Second, "a read once the lease is renewed", func() bool {
		_, err := c.Cells(ctx, sel)
		return err == nil
	})
}

// aggsOf returns the aggregate per merchant of the child's writes.
func aggsOf(writes []int) map[string]tsstore.Agg {
	out := map[string]tsstore.Agg{}
	for _, i := range writes {
		p := childPoint(i, time.Now())
		a := out[p.Labels.Get("merchant")]
		a.Add(p.Value)
		out[p.Labels.Get("merchant")] = a
	}
	return out
}
