package reprocess_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/hourglass-io/hourglass/reprocess"
	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/tsstore/archive"
	"github.com/hourglass-io/hourglass/tsstore/archive/dirarchive"
)

// envBenchPoints overrides the size of the benchmark archive (default
// 10 million points), e.g. HOURGLASS_REPROCESS_BENCH_POINTS=1000000 for a
// quick run.
const envBenchPoints = "HOURGLASS_REPROCESS_BENCH_POINTS"

const benchSegmentPoints = 100_000

// benchBase is 2026-01-01T00:00Z in ms.
var benchBase = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()

// benchArchive is built as tsstore/archive/dirarchive's BenchmarkScan
// builds its archive: segments of 100k points of views/orders/revenue over
// merchants x pages label sets (1000 x 20 there), 4 segments per 45-minute
// flush.
func benchArchive(b *testing.B, dir string, total, merchants, pages int) (from, to int64) {
	a, err := dirarchive.Open(dir, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer a.Close()
	var labels []tsstore.Labels
	for m := 0; m < merchants; m++ {
		for p := 0; p < pages; p++ {
			ls, err := tsstore.NewLabels("merchant", fmt.Sprintf("m%04d", m), "page", fmt.Sprintf("/page/%d", p), "country", []string{"fr", "de", "us", "jp"}[m%4])
			if err != nil {
				b.Fatal(err)
			}
			labels = append(labels, ls)
		}
	}
	metrics := []string{"views", "orders", "revenue"}
	start := time.Now()
	nseg := total / benchSegmentPoints
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for g := 0; g < 2; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for s := g; s < nseg; s += 2 {
				flush := int64(s / 4)
				r := rand.New(rand.NewPCG(uint64(s), 7))
				ps := make([]tsstore.Point, benchSegmentPoints)
				id := archive.SegmentID{Source: "bench", Generation: uint64(flush), Shard: s % 4, MinTime: tsstore.MaxTimestamp}
				for i := range ps {
					ps[i] = tsstore.Point{Metric: metrics[r.IntN(3)], Labels: labels[r.IntN(len(labels))],
						Timestamp: benchBase + flush*2_700_000 + r.Int64N(2_700_000), Value: float64(r.IntN(10000))}
					id.MinTime, id.MaxTime = min(id.MinTime, ps[i].Timestamp), max(id.MaxTime, ps[i].Timestamp)
				}
				if _, err := a.Append(context.Background(), id, ps); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
	b.Logf("built a %d-point archive of %d segments in %v", nseg*benchSegmentPoints, nseg, time.Since(start).Round(time.Second))
	return benchBase, benchBase + int64((nseg+3)/4)*2_700_000
}

// BenchmarkReprocess measures a job's throughput (raw points/s) from a
// dirarchive of 10 million points into a new promtsdb version, against
// the raw speed of scanning the same archive, and reports the ratio. Each
// sub-benchmark runs its whole workload once per iteration; use
// -benchtime 1x. The archive is dirarchive's benchmark workload: 60000
// series, so that nearly every point makes a cell of its own (the store's
// worst case).
func BenchmarkReprocess(b *testing.B) { benchReprocess(b, 1000, 20) }

// BenchmarkReprocessDense is BenchmarkReprocess over 300 series (50
// merchants x 2 pages x 3 metrics): about 30 points per cell, so that the
// store writes far fewer cells than points are read.
func BenchmarkReprocessDense(b *testing.B) { benchReprocess(b, 50, 2) }

func benchReprocess(b *testing.B, merchants, pages int) {
	total := 10_000_000
	if v := os.Getenv(envBenchPoints); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < benchSegmentPoints {
			b.Fatalf("%s=%q: want a number of points of at least %d", envBenchPoints, v, benchSegmentPoints)
		}
		total = n
	}
	dir := b.TempDir()
	from, to := benchArchive(b, filepath.Join(dir, "archive"), total, merchants, pages)
	a, err := dirarchive.Open(filepath.Join(dir, "archive"), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer a.Close()
	ctx := context.Background()
	var scanRate float64
	b.Run("scan", func(b *testing.B) {
		var n int64
		for i := 0; i < b.N; i++ {
			n = 0
			if err := a.Scan(ctx, archive.ScanRequest{From: from, To: to}, func(tsstore.Point) error { n++; return nil }); err != nil {
				b.Fatal(err)
			}
		}
		scanRate = float64(n) * float64(b.N) / b.Elapsed().Seconds()
		b.ReportMetric(scanRate, "points/s")
		b.ReportMetric(0, "ns/op")
	})
	// A processor that is not tsstore.Identity, so the engine takes the
	// processing path a real fix takes.
	keep := tsstore.ProcessorFunc{V: "keep/1", F: func(dst []tsstore.Point, p tsstore.Point) ([]tsstore.Point, error) {
		return append(dst, p), nil
	}}
	b.Run("reprocess", func(b *testing.B) {
		var lin *reprocess.Lineage
		for i := 0; i < b.N; i++ {
			v, err := reprocess.OpenVersions(filepath.Join(dir, fmt.Sprintf("versions-%d", i)), nil)
			if err != nil {
				b.Fatal(err)
			}
			lin, err = v.Run(ctx, reprocess.Job{ID: "bench", Archive: a, Processor: keep, From: from, Cutover: to})
			if err != nil {
				b.Fatal(err)
			}
		}
		rate := float64(lin.Points) * float64(b.N) / b.Elapsed().Seconds()
		b.ReportMetric(rate, "points/s")
		b.ReportMetric(float64(lin.Cells)*float64(b.N)/b.Elapsed().Seconds(), "cells/s")
		if scanRate > 0 {
			b.ReportMetric(rate/scanRate, "ratio-to-scan")
		}
		b.ReportMetric(0, "ns/op")
	})
}
