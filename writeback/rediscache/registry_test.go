package rediscache_test

import (
	"context"
	"fmt"
	"math/rand/v2"
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
