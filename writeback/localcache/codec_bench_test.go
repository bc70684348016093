package localcache

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/hourglass-io/hourglass/tsstore"
)

// issueBatch returns 5,000 points of issue 19's workload (see the
// package's BenchmarkAppend).
func issueBatch(r *rand.Rand, sets []tsstore.Labels) []tsstore.Point {
	if r == nil {
		r = rand.New(rand.NewPCG(1, 2))
	}
	b := make([]tsstore.Point, 0, 5_000)
	for len(b) < cap(b) {
		ls := sets[r.IntN(len(sets))]
		ts := 1_700_000_000_000 - r.Int64N(30*60_000)
		b = append(b,
			tsstore.Point{Metric: "web_views", Labels: ls, Timestamp: ts, Value: 1},
			tsstore.Point{Metric: "web_ms", Labels: ls, Timestamp: ts, Value: float64(r.IntN(2000))})
	}
	return b
}

func issueSets() []tsstore.Labels {
	sets := make([]tsstore.Labels, 100*200)
	for i := range sets {
		sets[i] = tsstore.Labels{
			{Name: "merchant", Value: fmt.Sprintf("m%03d", i/200)},
			{Name: "page", Value: fmt.Sprintf("/p/%03d", i%200)},
		}
	}
	return sets
}

// BenchmarkEncode compares the encoding of a 5,000-point batch record in
// the two versions (version 2 including the grouping of the points into
// series, which the merge then uses).
func BenchmarkEncode(b *testing.B) {
	sets := issueSets()
	r := rand.New(rand.NewPCG(1, 2))
	batches := make([][]tsstore.Point, 16)
	for i := range batches {
		batches[i] = issueBatch(r, sets)
	}
	var buf []byte
	b.Run("v1", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			buf = encodeV1(buf[:0], time.Minute, batches[i%len(batches)], nil)
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*5_000), "ns/point")
	})
	b.Run("v2", func(b *testing.B) {
		g, e := newGrouper(), newEncoder()
		for i := 0; b.Loop(); i++ {
			g.group(batches[i%len(batches)])
			buf = e.batch(buf[:0], time.Minute, g, nil)
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*5_000), "ns/point")
	})
}
