package promremote_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/tsstore/promremote"
)

// Example writes a cell to a VictoriaMetrics single node and reads its
// hourly aggregate back. It needs a server, so it is compiled but not run.
func Example() {
	ctx := context.Background()
	s, err := promremote.Open(ctx, "http://localhost:8428/api/v1/write", "http://localhost:8428/", nil)
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	ls, _ := tsstore.NewLabels("merchant", "m1", "page", "/cart")
	start := time.Date(2026, 1, 1, 10, 7, 0, 0, time.UTC).UnixMilli()
	c := tsstore.Cell{Metric: "revenue", Labels: ls, Start: start, Writer: "engine-1"}
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

// Example_cluster opens a store on a VictoriaMetrics cluster, tenant 42:
// writes through vminsert, reads through vmselect, and every Write ends
// with a force flush of each vmstorage node so that reads see it at once.
func Example_cluster() {
	s, err := promremote.Open(context.Background(),
		"http://vminsert:8480/insert/42/prometheus/api/v1/write",
		"http://vmselect:8481/select/42/prometheus/",
		&promremote.Options{FlushURLs: []string{
			"http://vmstorage-1:8482/internal/force_flush",
			"http://vmstorage-2:8482/internal/force_flush",
		}})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
}
