package writeback_test

import (
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/hourglass-io/hourglass/internal/cputime"
	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/tsstore/archive"
	"github.com/hourglass-io/hourglass/tsstore/archive/dirarchive"
	"github.com/hourglass-io/hourglass/writeback"
	"github.com/hourglass-io/hourglass/writeback/localcache"
)

// The sustained-ingest workload of issue 19: 100 merchants × 200 series,
// two metrics (two fields of a line), timestamps over the last 30 minutes,
// batches of 5,000 points from 4 concurrent writers.
const (
	sustainMerchants = 100
	sustainSeries    = 200
	sustainBatch     = 5_000
	sustainWriters   = 4
	sustainSpan      = 30 * 60_000 // ms
	// envFlushPoints overrides the points ingested before each flush.
	envFlushPoints     = "HOURGLASS_BENCH_FLUSH_POINTS"
	defaultFlushPoints = 2_000_000
)

// sustainBatches returns the benchmark's batches of n points in total.
func sustainBatches(n int, now int64) [][]tsstore.Point {
	sets := make([]tsstore.Labels, sustainMerchants*sustainSeries)
	for i := range sets {
		sets[i] = tsstore.Labels{
			{Name: "merchant", Value: fmt.Sprintf("m%03d", i/sustainSeries)},
			{Name: "page", Value: fmt.Sprintf("/p/%03d", i%sustainSeries)},
		}
	}
	metrics := [2]string{"web_views", "web_ms"}
	r := rand.New(rand.NewPCG(19, 19))
	var out [][]tsstore.Point
	for n > 0 {
		b := make([]tsstore.Point, 0, min(n, sustainBatch))
		for len(b) < cap(b) {
			ls := sets[r.IntN(len(sets))]
			ts := now - r.Int64N(sustainSpan)
			b = append(b,
				tsstore.Point{Metric: metrics[0], Labels: ls, Timestamp: ts, Value: 1},
				tsstore.Point{Metric: metrics[1], Labels: ls, Timestamp: ts, Value: float64(r.IntN(2000))})
		}
		n -= len(b)
		out = append(out, b)
	}
	return out
}

// BenchmarkFlushArchive measures one flush of a big generation into
// promtsdb and a dirarchive (the embedded defaults), against the rate at
// which the same engine acknowledged the points: flush-x is the flush's
// raw points/s over the ingest's, which must stay above 3 for a flush
// every 45 minutes to finish within its 15-minute budget. It also reports
// the cache's memory per cell (heap growth over the ingest, and the
// cache's own estimate), the write-ahead log's bytes per point, and the
// CPU time per point of the ingest and of the flush (which a loaded
// machine does not change much).
//
//	go test -run '^$' -bench FlushArchive -benchtime 1x ./writeback/
//	HOURGLASS_BENCH_FLUSH_POINTS=10000000 go test -run '^$' -bench FlushArchive -benchtime 1x -cpuprofile flush.prof ./writeback/
func BenchmarkFlushArchive(b *testing.B) {
	n := defaultFlushPoints
	if s := os.Getenv(envFlushPoints); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v <= 0 {
			b.Fatalf("%s=%q: want a positive number", envFlushPoints, s)
		}
		n = v
	}
	batches := sustainBatches(n, time.Now().UnixMilli())
	var ingestTook, flushTook, ingestCPU, flushCPU time.Duration
	var points, cells, heap, estimate, walBytes int64
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		dir := b.TempDir()
		cache, err := localcache.Open(filepath.Join(dir, "cache"), nil)
		if err != nil {
			b.Fatal(err)
		}
		arch, err := dirarchive.Open(filepath.Join(dir, "archive"), nil)
		if err != nil {
			b.Fatal(err)
		}
		eng, err := writeback.New(cache, openPromtsdb(b), &writeback.Options{
			FlushInterval: -1, MaxCacheBytes: 16 << 30, MaxLate: 2 * time.Hour,
			Archives: []archive.Archive{arch},
			Logger:   slog.New(slog.DiscardHandler),
		})
		if err != nil {
			b.Fatal(err)
		}
		before := heapInUse()
		t0, c0 := time.Now(), cputime.Used()
		var wg sync.WaitGroup
		next := make(chan []tsstore.Point)
		for range sustainWriters {
			wg.Go(func() {
				for bt := range next {
					if err := eng.Write(ctx, bt); err != nil {
						b.Error(err)
					}
				}
			})
		}
		for _, bt := range batches {
			next <- bt
		}
		close(next)
		wg.Wait()
		ingestTook += time.Since(t0)
		ingestCPU += cputime.Used() - c0
		st := cache.Stats()
		heap += heapInUse() - before
		estimate += st.Bytes
		walBytes += dirBytes(b, filepath.Join(dir, "cache"), ".wal")
		b.StartTimer()
		c0 = cputime.Used()
		rep, err := eng.Flush(ctx)
		if err != nil {
			b.Fatal(err)
		}
		flushCPU += cputime.Used() - c0
		b.StopTimer()
		flushTook += rep.Duration
		points += rep.Points
		cells += rep.Cells
		if rep.Points != int64(n) || rep.Cells != st.Cells {
			b.Fatalf("flushed %d points and %d cells, want %d and %d", rep.Points, rep.Cells, n, st.Cells)
		}
		if err := eng.Close(); err != nil {
			b.Fatal(err)
		}
		_ = cache.Close()
		_ = arch.Close()
	}
	ingest := float64(points) / ingestTook.Seconds()
	flush := float64(points) / flushTook.Seconds()
	b.ReportMetric(ingest, "ingest-points/s")
	b.ReportMetric(flush, "flush-points/s")
	b.ReportMetric(float64(cells)/flushTook.Seconds(), "flush-cells/s")
	b.ReportMetric(flush/ingest, "flush-x")
	b.ReportMetric(float64(heap)/float64(cells), "heap-B/cell")
	b.ReportMetric(float64(estimate)/float64(cells), "cache-B/cell")
	b.ReportMetric(float64(walBytes)/float64(points), "wal-B/point")
	b.ReportMetric(float64(cells)/float64(b.N), "cells")
	// CPU time per point does not depend on what else runs on the machine.
	b.ReportMetric(float64(ingestCPU.Nanoseconds())/float64(points), "ingest-cpu-ns/point")
	b.ReportMetric(float64(flushCPU.Nanoseconds())/float64(points), "flush-cpu-ns/point")
}

// heapInUse returns the live heap after a collection.
func heapInUse() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

// dirBytes sums the sizes of the files in dir whose names end in ext.
func dirBytes(b *testing.B, dir, ext string) int64 {
	names, err := filepath.Glob(filepath.Join(dir, "*"+ext))
	if err != nil {
		b.Fatal(err)
	}
	var n int64
	for _, name := range names {
		fi, err := os.Stat(name)
		if err != nil {
			b.Fatal(err)
		}
		n += fi.Size()
	}
	return n
}
