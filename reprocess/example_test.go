package reprocess_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/hourglass-io/hourglass/reprocess"
	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/tsstore/archive"
	"github.com/hourglass-io/hourglass/tsstore/archive/dirarchive"
	"github.com/hourglass-io/hourglass/tsstore/memstore"
)

// Example fixes revenue that ignored refunds: the archive holds two sales
// and a refund, the live store the buggy revenue; a job reprocesses the
// archive with the fixed processor, the diff shows the one changed cell,
// and after the switch the live store's reads give the corrected figure.
func Example() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "reprocess-example-")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)

	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	order := func(kind string, at int64, cents float64) tsstore.Point {
		return tsstore.Point{Metric: "order", Labels: tsstore.Labels{{Name: "kind", Value: kind}, {Name: "merchant", Value: "m1"}}, Timestamp: at, Value: cents}
	}
	raw := []tsstore.Point{order("sale", t0+10_000, 1000), order("refund", t0+20_000, 300), order("sale", t0+70_000, 500)}
	arch, err := dirarchive.Open(filepath.Join(dir, "archive"), nil)
	if err != nil {
		panic(err)
	}
	defer arch.Close()
	if _, err := arch.Append(ctx, archive.SegmentID{Source: "web", Generation: 1, MinTime: t0 + 10_000, MaxTime: t0 + 70_000}, raw); err != nil {
		panic(err)
	}
	// The live store holds what the buggy processor made of them.
	live := memstore.New(nil)
	m1 := tsstore.Labels{{Name: "merchant", Value: "m1"}}
	if err := live.Write(ctx, []tsstore.Cell{
		{Metric: "revenue", Labels: m1, Start: t0, Agg: tsstore.AggOf(1000)},
		{Metric: "revenue", Labels: m1, Start: t0 + 60_000, Agg: tsstore.AggOf(500)},
	}); err != nil {
		panic(err)
	}

	versions, err := reprocess.OpenVersions(filepath.Join(dir, "root"), nil)
	if err != nil {
		panic(err)
	}
	fixed := tsstore.ProcessorFunc{V: "revenue/2", F: func(dst []tsstore.Point, p tsstore.Point) ([]tsstore.Point, error) {
		v := p.Value
		if p.Labels.Get("kind") == "refund" {
			v = -v
		}
		return append(dst, tsstore.Point{Metric: "revenue", Labels: tsstore.Labels{{Name: "merchant", Value: p.Labels.Get("merchant")}}, Timestamp: p.Timestamp, Value: v}), nil
	}}
	lin, err := versions.Run(ctx, reprocess.Job{ID: "fix-refunds", Archive: arch, Processor: fixed, From: t0, Cutover: t0 + 120_000})
	if err != nil {
		panic(err)
	}
	fmt.Println("version", lin.ID, "by", lin.Processor, "from", lin.Points, "points of", len(lin.Segments), "segment")

	d, err := versions.Compare(ctx, "fix-refunds", live, nil)
	if err != nil {
		panic(err)
	}
	c := d.Largest[0]
	fmt.Printf("%d series changed, %d bucket: %s at +%ds: %v -> %v\n", d.SeriesChanged, d.BucketsChanged, c.Metric, (c.Start-t0)/1000, c.Old.Sum, c.New.Sum)

	sw, err := reprocess.NewSwitchable(live, versions)
	if err != nil {
		panic(err)
	}
	defer sw.Close()
	if err := sw.Switch("fix-refunds"); err != nil {
		panic(err)
	}
	res, err := sw.Query(ctx, tsstore.Query{Metric: "revenue", From: t0, To: t0 + 120_000, Step: 2 * time.Minute})
	if err != nil {
		panic(err)
	}
	fmt.Println("revenue after the switch:", res.Series[0].Buckets[0].Sum)
	// Output:
	// version fix-refunds by revenue/2 from 3 points of 1 segment
	// 1 series changed, 1 bucket: revenue at +0s: 1000 -> 700
	// revenue after the switch: 1200
}
