package rediscache_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hourglass-io/hourglass/internal/servertest"
	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/writeback"
	"github.com/hourglass-io/hourglass/writeback/cachetest"
	"github.com/hourglass-io/hourglass/writeback/rediscache"
)

// sharedClient returns a client of the shared test Redis.
func sharedClient(t testing.TB) *redis.Client {
	t.Helper()
	cl := redis.NewClient(&redis.Options{Addr: servertest.Redis(t)})
	t.Cleanup(func() { _ = cl.Close() })
	return cl
}

// uniquePrefix returns a fresh key prefix and deletes its keys when the
// test ends.
func uniquePrefix(t testing.TB, cl redis.UniversalClient) string {
	t.Helper()
	var b [6]byte
	_, _ = rand.Read(b[:])
	p := "hgtest:" + strings.NewReplacer("/", ":", " ", "_").Replace(t.Name()) + ":" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		ctx := context.Background()
		iter := cl.Scan(ctx, 0, "{"+p+"*", 1000).Iterator()
		var keys []string
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		for len(keys) > 0 {
			n := min(len(keys), 500)
			_ = cl.Del(ctx, keys[:n]...).Err()
			keys = keys[n:]
		}
	})
	return p
}

func TestConformance(t *testing.T) {
	cl := sharedClient(t)
	for _, tc := range []struct {
		name string
		opts rediscache.Options
	}{
		{"default", rediscache.Options{}},
		{"one-shard", rediscache.Options{Shards: 1}},
		{"three-shards-by-page", rediscache.Options{Shards: 3, IndexLabel: "page"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cachetest.Run(t, func(t *testing.T) cachetest.Opener {
				opts := tc.opts
				opts.Prefix = uniquePrefix(t, cl)
				return func(t *testing.T) writeback.Cache {
					c, err := rediscache.Open(context.Background(), cl, &opts)
					if err != nil {
						t.Fatal(err)
					}
					return c
				}
			})
		})
	}
}

func TestOptionsValidation(t *testing.T) {
	cl := sharedClient(t)
	ctx := context.Background()
	for _, o := range []rediscache.Options{
		{Prefix: "a{b"},
		{Shards: -1},
		{WaitReplicas: -2},
		{Durability: writeback.DurabilityReplicated},
	} {
		if _, err := rediscache.Open(ctx, cl, &o); !errors.Is(err, tsstore.ErrInvalid) {
			t.Errorf("Open(%+v) = %v, want ErrInvalid", o, err)
		}
	}
	// Replicated per batch without WaitReplicas is refused, not weakened.
	c, err := rediscache.Open(ctx, cl, &rediscache.Options{Prefix: uniquePrefix(t, cl)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	p := tsstore.Point{Metric: "views", Timestamp: cachetest.Base, Value: 1}
	err = c.Append(ctx, &writeback.Batch{Raw: []tsstore.Point{p}, Processed: []tsstore.Point{p}, CellWidth: time.Minute, Durability: writeback.DurabilityReplicated})
	if !errors.Is(err, tsstore.ErrInvalid) {
		t.Errorf("Append with DurabilityReplicated and no WaitReplicas: %v, want ErrInvalid", err)
	}
}

// TestTooFewReplicas: at DurabilityReplicated a batch that too few
// replicas acknowledged fails with ErrUnavailable and says so, yet it is on
// the primary and counts (as the package documentation warns).
func TestTooFewReplicas(t *testing.T) {
	cl := sharedClient(t)
	ctx := context.Background()
	c, err := rediscache.Open(ctx, cl, &rediscache.Options{Prefix: uniquePrefix(t, cl), WaitReplicas: 1, WaitTimeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ls, _ := tsstore.NewLabels("merchant", "m1")
	ps := []tsstore.Point{{Metric: "views", Labels: ls, Timestamp: cachetest.Base, Value: 3}}
	err = c.Append(ctx, &writeback.Batch{Raw: ps, Processed: ps, CellWidth: time.Minute})
	if !errors.Is(err, tsstore.ErrUnavailable) || !strings.Contains(err.Error(), "0 of 1 replicas") {
		t.Fatalf("Append without replicas = %v, want ErrUnavailable naming 0 of 1 replicas", err)
	}
	cells, err := c.Cells(ctx, tsstore.Selector{Metric: "views", From: 0, To: tsstore.MaxTimestamp - 1})
	if err != nil || len(cells) != 1 || cells[0].Count != 1 {
		t.Errorf("Cells after the unacknowledged batch = %+v, %v; want the batch on the primary", cells, err)
	}
}

// TestLargeBatch crosses the script's chunk of 2,000 cells, for new and
// for existing cells.
func TestLargeBatch(t *testing.T) {
	cl := sharedClient(t)
	ctx := context.Background()
	c, err := rediscache.Open(ctx, cl, &rediscache.Options{Prefix: uniquePrefix(t, cl), Shards: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const n = 4500
	ps := make([]tsstore.Point, n)
	for i := range ps {
		ls, _ := tsstore.NewLabels("merchant", "m1", "page", "/p"+strings.Repeat("x", i%7)+string(rune('a'+i%20)))
		ps[i] = tsstore.Point{Metric: "views", Labels: ls, Timestamp: cachetest.Base + int64(i/140)*60_000, Value: float64(i)}
	}
	for round := 1; round <= 2; round++ {
		if err := c.Append(ctx, &writeback.Batch{Raw: ps, Processed: ps, CellWidth: time.Minute}); err != nil {
			t.Fatal(err)
		}
		cells, err := c.Cells(ctx, tsstore.Selector{Metric: "views", From: 0, To: tsstore.MaxTimestamp - 1})
		if err != nil {
			t.Fatal(err)
		}
		var count uint64
		var sum float64
		for _, cell := range cells {
			count += cell.Count
			sum += cell.Sum
		}
		if want := float64(round) * n * (n - 1) / 2; count != uint64(round*n) || sum != want {
			t.Fatalf("round %d: %d cells with count %d and sum %v, want count %d and sum %v", round, len(cells), count, sum, round*n, want)
		}
	}
}

// TestPendingBatchOfAnotherAppender: a batch that is on the server but in
// no memtable of this process (as a failed append's may be: its script
// ran, its reply was lost) is folded from the log, so that the cells and
// the log of a sealed generation agree. A second cache on the same prefix
// stands in for the lost reply.
func TestPendingBatchOfAnotherAppender(t *testing.T) {
	cl := sharedClient(t)
	ctx := context.Background()
	opts := &rediscache.Options{Prefix: uniquePrefix(t, cl), Shards: 2}
	a, err := rediscache.Open(ctx, cl, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := rediscache.Open(ctx, cl, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	batch := func(merchant string, n int) *writeback.Batch {
		ls, _ := tsstore.NewLabels("merchant", merchant)
		ps := make([]tsstore.Point, n)
		for i := range ps {
			ps[i] = tsstore.Point{Metric: "views", Labels: ls, Timestamp: cachetest.Base + int64(i), Value: 1}
		}
		return &writeback.Batch{Raw: ps, Processed: ps, CellWidth: time.Minute}
	}
	if err := a.Append(ctx, batch("ma", 3)); err != nil {
		t.Fatal(err)
	}
	if err := b.Append(ctx, batch("mb", 5)); err != nil {
		t.Fatal(err)
	}
	g, ok, err := a.Seal(ctx)
	if err != nil || !ok {
		t.Fatalf("Seal = %v, %v", ok, err)
	}
	cells, err := a.SealedCells(ctx, g)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]uint64{}
	for _, c := range cells {
		got[c.Labels.Get("merchant")] += c.Count
	}
	if got["ma"] != 3 || got["mb"] != 5 || len(got) != 2 {
		t.Errorf("sealed cells count %v, want ma 3 and mb 5", got)
	}
	logged := 0
	if err := a.SealedLog(ctx, g, 100, func(ps []tsstore.Point) error { logged += len(ps); return nil }); err != nil {
		t.Fatal(err)
	}
	if logged != 8 {
		t.Errorf("the log holds %d points, want 8", logged)
	}
}
