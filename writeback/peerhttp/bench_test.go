package peerhttp_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/tsstore/memstore"
)

// BenchmarkQueryThroughPeers measures the latency of a merchant's query
// (one hour at one-minute steps) through one server that holds all the
// data in its cache, and through one of three servers that each hold a
// third of the same data (the query asks the two others over HTTP).
// go test -run '^$' -bench QueryThroughPeers ./writeback/peerhttp
func BenchmarkQueryThroughPeers(b *testing.B) {
	const merchants = 100
	for _, n := range []int{1, 3} {
		b.Run(fmt.Sprintf("servers=%d", n), func(b *testing.B) {
			nodes := startNodes(b, n, memstore.New(nil))
			now := time.Now().Truncate(time.Minute)
			for m := range merchants {
				ls, _ := tsstore.NewLabels("merchant", fmt.Sprintf("m%d", m))
				for min := range 60 {
					p := tsstore.Point{Metric: "views", Labels: ls, Timestamp: now.Add(-time.Duration(min) * time.Minute).UnixMilli(), Value: 1}
					if err := nodes[(m+min)%n].eng.Write(ctx, []tsstore.Point{p}); err != nil {
						b.Fatal(err)
					}
				}
			}
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := range b.N {
				m, _ := tsstore.NewMatcher(tsstore.MatchEqual, "merchant", fmt.Sprintf("m%d", i%merchants))
				q := tsstore.Query{Metric: "views", Matchers: []tsstore.Matcher{m}, From: now.Add(-time.Hour).UnixMilli(), To: now.Add(time.Minute).UnixMilli(), Step: time.Minute}
				t0 := time.Now()
				r, missing, err := nodes[0].eng.QueryDetailed(ctx, q)
				lat = append(lat, time.Since(t0))
				if err != nil || len(missing) > 0 || len(r.Series) != 1 {
					b.Fatalf("query: %v, missing %v, %d series", err, missing, len(r.Series))
				}
			}
			b.StopTimer()
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
		})
	}
}
