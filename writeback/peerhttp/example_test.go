package peerhttp_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"time"

	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/tsstore/memstore"
	"github.com/hourglass-io/hourglass/writeback"
	"github.com/hourglass-io/hourglass/writeback/localcache"
	"github.com/hourglass-io/hourglass/writeback/peerhttp"
)

// Two servers over one store: a query through the second sees a write
// that only the first server's cache holds.
func Example() {
	ctx := context.Background()
	secret := []byte("the tokens file's secret, shared")
	store := memstore.New(nil)
	open := func(peers writeback.Peers) (*writeback.Engine, func()) {
		dir, _ := os.MkdirTemp("", "peerhttp-example")
		cache, _ := localcache.Open(dir, nil)
		eng, _ := writeback.New(cache, store, &writeback.Options{FlushInterval: -1, Peers: peers})
		return eng, func() { _ = eng.Close(); _ = cache.Close(); _ = os.RemoveAll(dir) }
	}
	first, closeFirst := open(nil)
	defer closeFirst()
	srv := httptest.NewServer(&peerhttp.Handler{Secret: secret, Cells: first.CachedCells})
	defer srv.Close()
	second, closeSecond := open(&peerhttp.Client{Peers: []string{srv.URL}, Secret: secret})
	defer closeSecond()

	now := time.Now().UnixMilli()
	ls, _ := tsstore.NewLabels("merchant", "demo")
	_ = first.Write(ctx, []tsstore.Point{{Metric: "revenue", Labels: ls, Timestamp: now, Value: 10}})
	r, missing, _ := second.QueryDetailed(ctx, tsstore.Query{Metric: "revenue", From: now - 60_000, To: now + 60_000, Step: time.Minute, GroupBy: []string{}})
	var sum float64
	for _, s := range r.Series {
		for _, b := range s.Buckets {
			sum += b.Sum
		}
	}
	fmt.Println(sum, len(missing))
	// Output: 10 0
}
