package rediscache_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hourglass-io/hourglass/internal/servertest"
	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/tsstore/memstore"
	"github.com/hourglass-io/hourglass/writeback"
	"github.com/hourglass-io/hourglass/writeback/rediscache"
)

// hookStore runs beforeCells at the start of every Cells.
type hookStore struct {
	tsstore.Store
	beforeCells func()
}

func (s *hookStore) Cells(ctx context.Context, sel tsstore.Selector) ([]tsstore.Cell, error) {
	if f := s.beforeCells; f != nil {
		s.beforeCells = nil
		f()
	}
	return s.Store.Cells(ctx, sel)
}

// TestRegistryExact runs two members of a cluster, each an engine over its
// own prefix and one shared store, each reading the other through the
// Registry, both writing the same merchants' series: after every write (folded) and flush of either, a query through
// either equals the oracle; so does one whose store read comes after the
// other member flushed and committed what it read from its prefix.
func TestRegistryExact(t *testing.T) {
	r := servertest.StartRedis(t)
	cl := redis.NewClient(&redis.Options{Addr: r.Addr})
	defer cl.Close()
	ctx := context.Background()
	mem := memstore.New(nil)
	type member struct {
		c     *rediscache.Cache
		e     *writeback.Engine
		store *hookStore
	}
	var ms [2]*member
	for i := range ms {
		m := &member{store: &hookStore{Store: mem}}
		var err error
		m.c, err = rediscache.Open(ctx, cl, &rediscache.Options{Prefix: fmt.Sprintf("p%d", i), Shards: 3, Logger: quiet, Cluster: &rediscache.ClusterOptions{Name: "reg"}})
		if err != nil {
			t.Fatal(err)
		}
		defer m.c.Close()
		m.e, err = writeback.New(m.c, m.store, &writeback.Options{FlushInterval: -1, MaxLate: time.Hour, Logger: quiet, Peers: m.c.Registry(time.Minute)})
		if err != nil {
			t.Fatal(err)
		}
		defer m.e.Close()
		ms[i] = m
	}
	rnd := rand.New(rand.NewPCG(3, 3))
	now := time.Now()
	var o oracle
	check := func(what string) {
		t.Helper()
		for i, m := range ms {
			checkQueries(t, ctx, fmt.Sprintf("%s, through member %d", what, i), m.e, &o, now)
		}
	}
	for round := range 30 {
		w := ms[rnd.IntN(2)]
		ps := randomBatch(rnd, now, 1+rnd.IntN(40))
		if err := w.e.Write(ctx, ps); err != nil {
			t.Fatal(err)
		}
		o.add(ps...)
		if err := w.c.Fold(ctx); err != nil {
			t.Fatal(err)
		}
		switch rnd.IntN(4) {
		case 0:
			if _, err := ms[rnd.IntN(2)].e.Flush(ctx); err != nil {
				t.Fatal(err)
			}
		case 1:
			// The other member flushes between this one's read of its
			// peers and of the store.
			a, b := ms[round%2], ms[1-round%2]
			a.store.beforeCells = func() {
				if _, err := b.e.Flush(ctx); err != nil {
					t.Error(err)
				}
			}
		}
		check(fmt.Sprintf("round %d", round))
	}
}

// BenchmarkQueryThroughRegistry measures the latency of a merchant's query
// (one hour at one-minute steps) through one member of a cluster that
// holds all the data, and through one of three members that each hold a
// third of the same data (the query reads the two others' prefixes).
// go test -run '^$' -bench QueryThroughRegistry ./writeback/rediscache
func BenchmarkQueryThroughRegistry(b *testing.B) {
	const merchants = 100
	r := servertest.StartRedis(b)
	cl := redis.NewClient(&redis.Options{Addr: r.Addr})
	defer cl.Close()
	ctx := context.Background()
	for _, n := range []int{1, 3} {
		b.Run(fmt.Sprintf("servers=%d", n), func(b *testing.B) {
			store := memstore.New(nil)
			engines := make([]*writeback.Engine, n)
			for i := range engines {
				c, err := rediscache.Open(ctx, cl, &rediscache.Options{Prefix: fmt.Sprintf("b%d-%d", n, i), Logger: quiet, Cluster: &rediscache.ClusterOptions{Name: fmt.Sprintf("bench%d", n)}})
				if err != nil {
					b.Fatal(err)
				}
				defer c.Close()
				e, err := writeback.New(c, store, &writeback.Options{FlushInterval: -1, Logger: quiet, Peers: c.Registry(time.Minute)})
				if err != nil {
					b.Fatal(err)
				}
				defer e.Close()
				engines[i] = e
			}
			now := time.Now().Truncate(time.Minute)
			defer func() {
				for _, e := range engines {
					_ = e.Close()
				}
			}()
			for m := range merchants {
				for min := range 60 {
					p := pt("views", fmt.Sprintf("m%d", m), now.Add(-time.Duration(min)*time.Minute).UnixMilli(), 1)
					if err := engines[(m+min)%n].Write(ctx, []tsstore.Point{p}); err != nil {
						b.Fatal(err)
					}
				}
			}
			// The other members' batches are read once folded.
			time.Sleep(2 * rediscache.DefaultFoldInterval)
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := range b.N {
				m, _ := tsstore.NewMatcher(tsstore.MatchEqual, "merchant", fmt.Sprintf("m%d", i%merchants))
				q := tsstore.Query{Metric: "views", Matchers: []tsstore.Matcher{m}, From: now.Add(-time.Hour).UnixMilli(), To: now.Add(time.Minute).UnixMilli(), Step: time.Minute}
				t0 := time.Now()
				_, missing, err := engines[0].QueryDetailed(ctx, q)
				lat = append(lat, time.Since(t0))
				if err != nil || len(missing) > 0 {
					b.Fatalf("query: %v, missing %v", err, missing)
				}
			}
			b.StopTimer()
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
		})
	}
}

// TestFoldWithoutReplicasFoldsEveryShard: while the replicas a fold waits
// for are missing, one fold still folds every shard (each applied on the
// primary), so other members see every batch after one fold, not one
// shard per fold interval.
func TestFoldWithoutReplicasFoldsEveryShard(t *testing.T) {
	r := servertest.StartRedis(t)
	cl := redis.NewClient(&redis.Options{Addr: r.Addr})
	defer cl.Close()
	ctx := context.Background()
	c, err := rediscache.Open(ctx, cl, &rediscache.Options{Prefix: "p", Shards: 8, WaitReplicas: 1, WaitTimeout: 20 * time.Millisecond, FoldInterval: time.Hour, Logger: quiet, Cluster: &rediscache.ClusterOptions{Name: "nr"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	now := time.Now()
	const merchants = 40
	for i := range merchants {
		ps := []tsstore.Point{pt("views", fmt.Sprintf("m%d", i), now.UnixMilli(), 1)}
		if err := c.Append(ctx, &writeback.Batch{Raw: ps, Processed: ps, CellWidth: time.Minute, Durability: writeback.DurabilityLogged}); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Fold(ctx); !errors.Is(err, tsstore.ErrUnavailable) {
		t.Fatalf("Fold without the replica = %v, want ErrUnavailable", err)
	}
	reg := rediscache.NewRegistry(cl, &rediscache.RegistryOptions{Name: "nr"})
	cells, missing, err := reg.PeerCells(ctx, tsstore.Selector{Metric: "views", From: now.Add(-time.Hour).UnixMilli(), To: now.Add(time.Hour).UnixMilli()})
	if err != nil || len(missing) > 0 {
		t.Fatal(err, missing)
	}
	if len(cells) != merchants {
		t.Errorf("another member sees %d of the %d merchants' cells after one fold", len(cells), merchants)
	}
}
