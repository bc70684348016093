package dirarchive_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/tsstore/archive"
)

// base is 2026-01-01T00:00Z in ms.
var base = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()

// workload makes n points of a flush: metrics views/orders/revenue, 1000
// merchants, 20 pages, timestamps spread over [from, from+span), integer
// values. The same arguments give the same points.
type workload struct {
	labels [][]tsstore.Labels // [merchant][page]
}

func newWorkload() *workload {
	w := &workload{}
	for m := 0; m < 1000; m++ {
		var row []tsstore.Labels
		for p := 0; p < 20; p++ {
			ls, err := tsstore.NewLabels("merchant", fmt.Sprintf("m%04d", m), "page", fmt.Sprintf("/page/%d", p), "country", []string{"fr", "de", "us", "jp"}[m%4])
			if err != nil {
				panic(err)
			}
			row = append(row, ls)
		}
		w.labels = append(w.labels, row)
	}
	return w
}

var metrics = []string{"views", "orders", "revenue"}

func (w *workload) points(seed uint64, n int, from, span int64) []tsstore.Point {
	r := rand.New(rand.NewPCG(seed, 7))
	ps := make([]tsstore.Point, n)
	for i := range ps {
		ps[i] = tsstore.Point{
			Metric:    metrics[r.IntN(len(metrics))],
			Labels:    w.labels[r.IntN(len(w.labels))][r.IntN(20)],
			Timestamp: from + r.Int64N(span),
			Value:     float64(r.IntN(10000)),
		}
	}
	return ps
}

func idOf(source string, gen uint64, shard int, ps []tsstore.Point) archive.SegmentID {
	id := archive.SegmentID{Source: source, Generation: gen, Shard: shard, MinTime: ps[0].Timestamp, MaxTime: ps[0].Timestamp}
	for _, p := range ps {
		id.MinTime = min(id.MinTime, p.Timestamp)
		id.MaxTime = max(id.MaxTime, p.Timestamp)
	}
	return id
}

func mustAppend(t testing.TB, a archive.Archive, id archive.SegmentID, ps []tsstore.Point) archive.SegmentInfo {
	t.Helper()
	info, err := a.Append(context.Background(), id, ps)
	if err != nil {
		t.Fatalf("Append(%s): %v", id.Name(), err)
	}
	return info
}

func count(ctx context.Context, a archive.Archive, r archive.ScanRequest) (int, error) {
	n := 0
	err := a.Scan(ctx, r, func(tsstore.Point) error { n++; return nil })
	return n, err
}
