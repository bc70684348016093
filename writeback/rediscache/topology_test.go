package rediscache_test

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/redis/go-redis/v9"

	"github.com/hourglass-io/hourglass/internal/servertest"
	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/tsstore/memstore"
	"github.com/hourglass-io/hourglass/writeback"
	"github.com/hourglass-io/hourglass/writeback/cachetest"
	"github.com/hourglass-io/hourglass/writeback/rediscache"
)

// waitFor polls cond every 50ms until it holds or d passed.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// startCluster starts a Redis Cluster of three primaries (no replicas) on
// free ports, each with its own cluster bus port, and returns a
// UniversalClient of it.
func startCluster(t *testing.T) redis.UniversalClient {
	t.Helper()
	if _, err := exec.LookPath("redis-cli"); err != nil {
		servertest.Missing(t, "redis-cli", "install Debian's redis-tools package")
	}
	var addrs []string
	for i := 0; i < 3; i++ {
		p := servertest.StartRedis(t, "--cluster-enabled", "yes", "--cluster-port", strconv.Itoa(servertest.FreePort(t)), "--cluster-node-timeout", "2000")
		addrs = append(addrs, p.Addr)
	}
	args := append(append([]string{"--cluster", "create"}, addrs...), "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.Command("redis-cli", args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	ctx := context.Background()
	for _, a := range addrs {
		c := redis.NewClient(&redis.Options{Addr: a})
		waitFor(t, 15*time.Second, "cluster_state:ok on "+a, func() bool {
			info, err := c.ClusterInfo(ctx).Result()
			return err == nil && strings.Contains(info, "cluster_state:ok")
		})
		_ = c.Close()
	}
	cl := redis.NewUniversalClient(&redis.UniversalOptions{Addrs: addrs, IsClusterMode: true})
	t.Cleanup(func() { _ = cl.Close() })
	if _, ok := cl.(*redis.ClusterClient); !ok {
		t.Fatalf("NewUniversalClient made a %T, want a *redis.ClusterClient", cl)
	}
	// Every node must know every slot's owner before the first write.
	waitFor(t, 15*time.Second, "the cluster client sees three primaries", func() bool {
		var n atomic.Int32
		err := cl.(*redis.ClusterClient).ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
			n.Add(1)
			return c.Ping(ctx).Err()
		})
		return err == nil && n.Load() == 3
	})
	return cl
}

// TestCluster runs the conformance suite and the engine against the
// oracle on a three-primary Redis Cluster: every script touches the keys
// of one shard, which its hash tag keeps in one slot, and the shards
// spread over the primaries.
func TestCluster(t *testing.T) {
	cl := startCluster(t)
	n := 0
	prefix := func(t *testing.T) string {
		n++
		return fmt.Sprintf("c%d", n)
	}
	t.Run("Conformance", func(t *testing.T) {
		cachetest.Run(t, func(t *testing.T) cachetest.Opener {
			opts := rediscache.Options{Prefix: prefix(t), Shards: 6}
			return func(t *testing.T) writeback.Cache {
				c, err := rediscache.Open(context.Background(), cl, &opts)
				if err != nil {
					t.Fatal(err)
				}
				return c
			}
		})
	})
	t.Run("Engine", func(t *testing.T) { testEngine(t, cl, prefix(t)) })
	// The shards' keys are on more than one primary.
	var (
		mu   sync.Mutex
		used []string
	)
	err := cl.(*redis.ClusterClient).ForEachMaster(context.Background(), func(ctx context.Context, c *redis.Client) error {
		if n, err := c.DBSize(ctx).Result(); err != nil {
			return err
		} else if n > 0 {
			mu.Lock()
			used = append(used, c.Options().Addr)
			mu.Unlock()
		}
		return nil
	})
	if err != nil || len(used) < 2 {
		t.Errorf("primaries holding keys: %v (%v); want the shards spread over several", used, err)
	}
}

// TestSentinelFailover runs the conformance suite and the engine through
// a Sentinel failover client (made by NewUniversalClient), then writes
// with WAIT 1 while the primary is killed with SIGKILL: Sentinel promotes
// the replica, the client follows, writes continue, and no acknowledged
// point is lost or counted twice. Every batch has a merchant of its own,
// so that a batch whose write failed during the failover can be checked
// to be either wholly there or absent.
func TestSentinelFailover(t *testing.T) {
	ctx := context.Background()
	primary := servertest.StartRedis(t)
	replica := servertest.StartRedis(t, "--replicaof", "127.0.0.1", strconv.Itoa(primary.Port))
	rc := redis.NewClient(&redis.Options{Addr: replica.Addr})
	defer rc.Close()
	waitReplication(t, rc)
	sentinel := servertest.StartSentinel(t, primary.Port, 1)
	cl := redis.NewUniversalClient(&redis.UniversalOptions{Addrs: []string{sentinel}, MasterName: "hg", MaxRetries: 1, DialTimeout: 300 * time.Millisecond, ReadTimeout: 3 * time.Second})
	defer cl.Close()

	t.Run("Conformance", func(t *testing.T) {
		cachetest.Run(t, func(t *testing.T) cachetest.Opener {
			opts := rediscache.Options{Prefix: uniquePrefix(t, cl), Shards: 3}
			return func(t *testing.T) writeback.Cache {
				c, err := rediscache.Open(ctx, cl, &opts)
				if err != nil {
					t.Fatal(err)
				}
				return c
			}
		})
	})

	opts := &rediscache.Options{Prefix: "sentinel", Shards: 4, WaitReplicas: 1, WaitTimeout: 2 * time.Second, FoldInterval: 50 * time.Millisecond}
	store := memstore.New(nil)
	defer store.Close()
	cache, eng := openEngine(t, cl, opts, store, nil)
	defer cache.Close()
	now := time.Now().Truncate(time.Minute)
	batchOf := func(i int) []tsstore.Point {
		ls, _ := tsstore.NewLabels("merchant", "b"+strconv.Itoa(i))
		ps := make([]tsstore.Point, 5)
		for j := range ps {
			ps[j] = tsstore.Point{Metric: "views", Labels: ls, Timestamp: now.Add(-time.Duration(j) * time.Minute).UnixMilli(), Value: float64(i*10 + j)}
		}
		return ps
	}
	var (
		mu                sync.Mutex
		acked, uncertain  = map[int]bool{}, map[int]bool{}
		afterKill, killed = 0, false
	)
	write := func(i int) {
		err := eng.Write(ctx, batchOf(i))
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			uncertain[i] = true
			return
		}
		acked[i] = true
		if killed {
			afterKill++
		}
	}
	for i := 0; i < 20; i++ {
		write(i)
		if i == 9 {
			if _, err := eng.Flush(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	if len(uncertain) > 0 {
		t.Fatalf("writes failed before the failover: %v", uncertain)
	}
	// A writer keeps writing new batches while the primary dies, until
	// ten more were acknowledged after the failover.
	done := make(chan struct{})
	go func() {
		defer close(done)
		deadline := time.Now().Add(20 * time.Second)
		for i := 20; time.Now().Before(deadline); i++ {
			write(i)
			mu.Lock()
			n := afterKill
			mu.Unlock()
			if n >= 10 {
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	time.Sleep(100 * time.Millisecond)
	mu.Lock()
	killed = true
	mu.Unlock()
	primary.Kill()
	// The promoted replica needs a replica of its own for WAIT 1.
	sc := redis.NewSentinelClient(&redis.Options{Addr: sentinel})
	defer sc.Close()
	waitFor(t, 15*time.Second, "Sentinel promotes the replica", func() bool {
		a, err := sc.GetMasterAddrByName(ctx, "hg").Result()
		return err == nil && len(a) == 2 && a[1] == strconv.Itoa(replica.Port)
	})
	second := servertest.StartRedis(t, "--replicaof", "127.0.0.1", strconv.Itoa(replica.Port))
	c2 := redis.NewClient(&redis.Options{Addr: second.Addr})
	defer c2.Close()
	waitReplication(t, c2)
	<-done
	mu.Lock()
	t.Logf("%d batches acknowledged, %d failed during the failover, %d acknowledged after the kill", len(acked), len(uncertain), afterKill)
	if afterKill < 10 {
		mu.Unlock()
		t.Fatalf("only %d writes were acknowledged after the failover", afterKill)
	}
	mu.Unlock()

	check := func(what string, q interface {
		Query(context.Context, tsstore.Query) (*tsstore.Result, error)
	}) {
		t.Helper()
		res, err := q.Query(ctx, tsstore.Query{Metric: "views", From: now.Add(-time.Hour).UnixMilli(), To: now.Add(time.Hour).UnixMilli(), Step: 2 * time.Hour, GroupBy: []string{"merchant"}})
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		got := map[int]tsstore.Agg{}
		for _, s := range res.Series {
			i, _ := strconv.Atoi(strings.TrimPrefix(s.Labels.Get("merchant"), "b"))
			for _, b := range s.Buckets {
				a := got[i]
				a.Merge(b.Agg)
				got[i] = a
			}
		}
		for i := range acked {
			var want tsstore.Agg
			for _, p := range batchOf(i) {
				want.Add(p.Value)
			}
			if d := cmp.Diff(want, got[i], cmpopts.EquateEmpty()); d != "" {
				t.Errorf("%s: acknowledged batch %d (-want +got):\n%s", what, i, d)
			}
		}
		for i, a := range got {
			if acked[i] {
				continue
			}
			if !uncertain[i] {
				t.Errorf("%s: batch %d was never written but has %+v", what, i, a)
				continue
			}
			var whole tsstore.Agg
			for _, p := range batchOf(i) {
				whole.Add(p.Value)
			}
			if a != whole {
				t.Errorf("%s: failed batch %d is partly there: %+v of %+v", what, i, a, whole)
			}
		}
	}
	check("after the failover", eng)
	if err := eng.Close(); err != nil {
		t.Fatalf("final flush after the failover: %v", err)
	}
	check("the store after the final flush", store)
	if err := cache.Close(); err != nil {
		t.Error(err)
	}
}
