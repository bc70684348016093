package dirarchive_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/tsstore/archive"
	"github.com/hourglass-io/hourglass/tsstore/archive/dirarchive"
)

func Example() {
	dir, err := os.MkdirTemp("", "archive-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	a, err := dirarchive.Open(dir, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer a.Close()

	ctx := context.Background()
	m1, _ := tsstore.NewLabels("merchant", "m1")
	m2, _ := tsstore.NewLabels("merchant", "m2")
	t0 := int64(1767225600000) // 2026-01-01T00:00Z
	points := []tsstore.Point{
		{Metric: "orders", Labels: m2, Timestamp: t0 + 2000, Value: 1},
		{Metric: "orders", Labels: m1, Timestamp: t0 + 1000, Value: 1},
		{Metric: "revenue", Labels: m1, Timestamp: t0 + 1000, Value: 1250},
	}
	// One flush of one shard: the id names the segment.
	id := archive.SegmentID{Source: "web-1", Generation: 42, Shard: 0, MinTime: t0 + 1000, MaxTime: t0 + 2000}
	info, err := a.Append(ctx, id, points)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(info.Name, info.Points)

	// A retried flush is a no-op.
	if _, err := a.Append(ctx, id, points); err != nil {
		log.Fatal(err)
	}
	// Points of m1 in time order.
	m, _ := tsstore.NewMatcher(tsstore.MatchEqual, "merchant", "m1")
	err = a.Scan(ctx, archive.ScanRequest{From: t0, To: t0 + 3600_000, Matchers: []tsstore.Matcher{m}}, func(p tsstore.Point) error {
		fmt.Println(p.Timestamp-t0, p.Metric, p.Labels, p.Value)
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}
	// Output:
	// 2026/01/01/00/web-1-g0000000000000042-s0000-1767225601000-1767225602000.parquet 3
	// 1000 orders {merchant="m1"} 1
	// 1000 revenue {merchant="m1"} 1250
}
