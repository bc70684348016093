package s3archive_test

import (
	"context"
	"fmt"
	"log"

	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/tsstore/archive"
	"github.com/hourglass-io/hourglass/tsstore/archive/s3archive"
	"github.com/hourglass-io/hourglass/tsstore/memstore"
	"github.com/hourglass-io/hourglass/writeback"
	"github.com/hourglass-io/hourglass/writeback/localcache"
)

// Example archives one flush of points in a bucket and scans them back.
// The credentials come from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.
// (It needs an S3 server, so it is compiled, not run.)
func Example() {
	ctx := context.Background()
	a, err := s3archive.Open(ctx, "https://s3.eu-west-1.amazonaws.com", "hourglass-archive", "raw/",
		&s3archive.Options{Region: "eu-west-1"})
	if err != nil {
		log.Fatal(err)
	}
	defer a.Close()

	m1, _ := tsstore.NewLabels("merchant", "m1")
	t0 := int64(1767225600000) // 2026-01-01T00:00Z
	points := []tsstore.Point{
		{Metric: "orders", Labels: m1, Timestamp: t0 + 1000, Value: 1},
		{Metric: "revenue", Labels: m1, Timestamp: t0 + 1000, Value: 1250},
	}
	id := archive.SegmentID{Source: "web-1", Generation: 42, MinTime: t0 + 1000, MaxTime: t0 + 1000}
	info, err := a.Append(ctx, id, points)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(info.Name, info.Points)
	err = a.Scan(ctx, archive.ScanRequest{From: t0, To: t0 + 3600_000}, func(p tsstore.Point) error {
		fmt.Println(p.Timestamp-t0, p.Metric, p.Labels, p.Value)
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}
}

// Example_twoRegions keeps the archive in two buckets in two regions:
// every flush of the write-back engine appends its segment to both, and a
// generation is committed only when both have it.
func Example_twoRegions() {
	ctx := context.Background()
	eu, err := s3archive.Open(ctx, "https://s3.eu-west-1.amazonaws.com", "hourglass-eu", "",
		&s3archive.Options{Region: "eu-west-1"})
	if err != nil {
		log.Fatal(err)
	}
	defer eu.Close()
	us, err := s3archive.Open(ctx, "https://s3.us-east-1.amazonaws.com", "hourglass-us", "",
		&s3archive.Options{Region: "us-east-1"})
	if err != nil {
		log.Fatal(err)
	}
	defer us.Close()

	cache, err := localcache.Open("/var/lib/hourglass/cache", nil)
	if err != nil {
		log.Fatal(err)
	}
	engine, err := writeback.New(cache, memstore.New(nil), &writeback.Options{
		Archives: []archive.Archive{eu, us},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer engine.Close()
}
