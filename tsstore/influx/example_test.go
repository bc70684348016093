package influx_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/tsstore/influx"
)

// Example writes a cell to an InfluxDB 1.x server and reads its hourly
// aggregate back. It needs a server, so it is compiled but not run.
func Example() {
	ctx := context.Background()
	s, err := influx.Open("http://localhost:8086", &influx.Options{
		Database: "hourglass",
		WriteAPI: influx.WriteV1, // servers older than 1.8; WriteV2 (the default) otherwise
	})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	if err := s.EnsureDatabase(ctx); err != nil {
		log.Fatal(err)
	}
	ls, _ := tsstore.NewLabels("merchant", "m1", "page", "/cart")
	start := time.Date(2026, 1, 1, 10, 7, 0, 0, time.UTC).UnixMilli()
	c := tsstore.Cell{Metric: "revenue", Labels: ls, Start: start}
	c.Add(1250)
	c.Add(990)
	if err := s.Write(ctx, []tsstore.Cell{c}); err != nil {
		log.Fatal(err)
	}
	from := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC).UnixMilli()
	r, err := s.Query(ctx, tsstore.Query{Metric: "revenue", From: from, To: from + 3600_000, Step: time.Hour, GroupBy: []string{"merchant"}})
	if err != nil {
		log.Fatal(err)
	}
	for _, se := range r.Series {
		for _, b := range se.Buckets {
			fmt.Println(se.Labels, tsstore.TimeOf(b.Start).Format(time.RFC3339), b.Count, b.Sum)
		}
	}
}
