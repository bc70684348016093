package promtsdb_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/tsstore/promtsdb"
)

func Example() {
	dir, err := os.MkdirTemp("", "promtsdb-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	s, err := promtsdb.Open(dir, nil) // 1-minute cells, 7-day out-of-order window, no retention
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	ctx := context.Background()
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC).UnixMilli()
	m1, _ := tsstore.NewLabels("merchant", "m1")
	cells := []tsstore.Cell{
		{Metric: "revenue", Labels: m1, Start: t0, Agg: tsstore.Agg{Count: 2, Sum: 30, Min: 10, Max: 20}},
		{Metric: "revenue", Labels: m1, Start: t0 + 60_000, Agg: tsstore.AggOf(5)},
		// A late partial of the first cell, from the next flush.
		{Metric: "revenue", Labels: m1, Start: t0, Seq: 1, Agg: tsstore.AggOf(40)},
	}
	if err := s.Write(ctx, cells); err != nil {
		log.Fatal(err)
	}
	// A retried flush is a no-op.
	if err := s.Write(ctx, cells); err != nil {
		log.Fatal(err)
	}

	r, err := s.Query(ctx, tsstore.Query{Metric: "revenue", From: t0, To: t0 + 3_600_000, Step: time.Hour})
	if err != nil {
		log.Fatal(err)
	}
	for _, se := range r.Series {
		for _, b := range se.Buckets {
			fmt.Printf("%s %s count=%d sum=%g min=%g max=%g\n", se.Labels, tsstore.TimeOf(b.Start).Format(time.TimeOnly), b.Count, b.Sum, b.Min, b.Max)
		}
	}
	// Output:
	// {merchant="m1"} 12:00:00 count=4 sum=75 min=5 max=40
}
