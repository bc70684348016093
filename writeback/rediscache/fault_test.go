package rediscache_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/redis/go-redis/v9"

	"github.com/hourglass-io/hourglass/internal/servertest"
	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/tsstore/memstore"
	"github.com/hourglass-io/hourglass/writeback/rediscache"
)

// waitReplication waits until the replica's link to its primary is up.
func waitReplication(t *testing.T, replica *redis.Client) {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		info, err := replica.Info(ctx, "replication").Result()
		if err == nil && strings.Contains(info, "master_link_status:up") {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("the replica did not connect to the primary within 20s")
}

// TestFailoverLosesNoAcknowledgedPoint writes through the engine with
// DurabilityReplicated (WAIT 1) to a primary with one replica, flushes
// part of it, kills the primary with SIGKILL while a writer is busy,
// promotes the replica and reopens the cache there: every acknowledged
// point is counted exactly once (the one batch that failed at the kill
// may or may not be there, whole).
func TestFailoverLosesNoAcknowledgedPoint(t *testing.T) {
	ctx := context.Background()
	primary := servertest.StartRedis(t)
	replica := servertest.StartRedis(t, "--replicaof", "127.0.0.1", strconv.Itoa(primary.Port))
	pc := redis.NewClient(&redis.Options{Addr: primary.Addr, MaxRetries: 1, DialTimeout: 500 * time.Millisecond})
	defer pc.Close()
	rc := redis.NewClient(&redis.Options{Addr: replica.Addr})
	defer rc.Close()
	waitReplication(t, rc)

	opts := &rediscache.Options{Prefix: "failover", Shards: 4, WaitReplicas: 1, WaitTimeout: 2 * time.Second}
	store := memstore.New(nil)
	defer store.Close()
	cache, eng := openEngine(t, pc, opts, store, nil)
	now := time.Now()
	r := rand.New(rand.NewPCG(1, 2))
	var o oracle
	for i := 0; i < 20; i++ {
		ps := randomBatch(r, now, 50)
		if err := eng.Write(ctx, ps); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		o.add(ps...)
		if i == 9 {
			if _, err := eng.Flush(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, _, err := cache.Seal(ctx); err != nil { // a sealed, unflushed generation
		t.Fatal(err)
	}
	// A writer keeps writing; the primary dies under it.
	var (
		mu     sync.Mutex
		failed []tsstore.Point
		acked  int
	)
	var wg sync.WaitGroup
	wg.Add(1)
	started := make(chan struct{})
	go func() {
		defer wg.Done()
		wr := rand.New(rand.NewPCG(3, 4))
		for i := 0; ; i++ {
			ps := randomBatch(wr, now, 20)
			err := eng.Write(ctx, ps)
			mu.Lock()
			if err != nil {
				failed = ps
				mu.Unlock()
				return
			}
			o.add(ps...)
			acked++
			mu.Unlock()
			if i == 20 {
				close(started)
			}
		}
	}()
	<-started
	primary.Kill()
	wg.Wait()
	if !errors.Is(eng.Write(ctx, randomBatch(r, now, 1)), tsstore.ErrUnavailable) {
		t.Error("a write to the dead primary did not fail with ErrUnavailable")
	}
	_ = cache.Close()
	if err := eng.Close(); err == nil {
		t.Error("the final flush over the dead primary succeeded")
	}

	if err := rc.ReplicaOf(ctx, "NO", "ONE").Err(); err != nil {
		t.Fatal(err)
	}
	// The promoted server gets a replica of its own, so that WAIT 1 (on
	// writes, seals and commits) can succeed again.
	second := servertest.StartRedis(t, "--replicaof", "127.0.0.1", strconv.Itoa(replica.Port))
	sc := redis.NewClient(&redis.Options{Addr: second.Addr})
	defer sc.Close()
	waitReplication(t, sc)
	cache, eng = openEngine(t, rc, opts, store, nil)
	defer cache.Close()
	t.Logf("%d batches acknowledged while the primary was killed", acked)
	// The failed batch is either wholly there or not at all.
	withFailed := oracle{points: append(append([]tsstore.Point(nil), o.points...), failed...)}
	check := func(what string, e interface {
		Query(context.Context, tsstore.Query) (*tsstore.Result, error)
	}) {
		t.Helper()
		for i, q := range queries(now) {
			got, err := e.Query(ctx, q)
			if err != nil {
				t.Fatalf("%s: query %d: %v", what, i, err)
			}
			want, alt := o.query(q, time.Minute), withFailed.query(q, time.Minute)
			if d := cmp.Diff(want, got, cmpopts.EquateEmpty()); d != "" && !cmp.Equal(alt, got, cmpopts.EquateEmpty()) {
				t.Fatalf("%s: query %d %+v (-acknowledged +after failover):\n%s", what, i, q, d)
			}
		}
	}
	check("after the failover", eng)
	if err := eng.Close(); err != nil {
		t.Fatalf("final flush on the promoted replica: %v", err)
	}
	check("the store after the final flush", store)
}
