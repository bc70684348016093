package localcache_test

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hourglass-io/hourglass/internal/cputime"
	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/writeback"
	"github.com/hourglass-io/hourglass/writeback/localcache"
)

// issueBatches returns n points of issue 19's workload in batches of
// 5,000: 100 merchants × 200 pages, each line two points (metrics
// web_views and web_ms) sharing one label slice, timestamps over the last
// 30 minutes.
func issueBatches(n int) []*writeback.Batch {
	sets := make([]tsstore.Labels, 100*200)
	for i := range sets {
		sets[i] = tsstore.Labels{
			{Name: "merchant", Value: fmt.Sprintf("m%03d", i/200)},
			{Name: "page", Value: fmt.Sprintf("/p/%03d", i%200)},
		}
	}
	const now = 1_700_000_000_000
	r := rand.New(rand.NewPCG(19, 19))
	var out []*writeback.Batch
	for n > 0 {
		b := make([]tsstore.Point, 0, min(n, 5_000))
		for len(b) < cap(b) {
			ls := sets[r.IntN(len(sets))]
			ts := now - r.Int64N(30*60_000)
			b = append(b,
				tsstore.Point{Metric: "web_views", Labels: ls, Timestamp: ts, Value: 1},
				tsstore.Point{Metric: "web_ms", Labels: ls, Timestamp: ts, Value: float64(r.IntN(2000))})
		}
		n -= len(b)
		out = append(out, &writeback.Batch{Raw: b, Processed: b, CellWidth: time.Minute})
	}
	return out
}

// BenchmarkAppend measures Append on issue 19's workload (FsyncNever, one
// writer): CPU per point, and the log's bytes per point.
func BenchmarkAppend(b *testing.B) {
	batches := issueBatches(200_000)
	var points, walBytes int64
	var cpu time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		dir := b.TempDir()
		c, err := localcache.Open(dir, &localcache.Options{Fsync: localcache.FsyncNever})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		c0 := cputime.Used()
		for _, bt := range batches {
			if err := c.Append(ctx, bt); err != nil {
				b.Fatal(err)
			}
			points += int64(len(bt.Raw))
		}
		cpu += cputime.Used() - c0
		b.StopTimer()
		names, _ := filepath.Glob(filepath.Join(dir, "*.wal"))
		for _, n := range names {
			st, err := os.Stat(n)
			if err != nil {
				b.Fatal(err)
			}
			walBytes += st.Size()
		}
		if err := c.Close(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(points), "ns/point")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(points), "cpu-ns/point")
	b.ReportMetric(float64(walBytes)/float64(points), "wal-B/point")
}

// BenchmarkSealedRead reads a sealed generation of 1,000,000 points of
// issue 19's workload back, in chunks of 500,000, with SealedLogOwned (as
// the flush's archive step does) and with SealedColumns, side by side.
func BenchmarkSealedRead(b *testing.B) {
	const n = 1_000_000
	c, gen := sealedIssueGen(b, b.TempDir(), n)
	var logTook, colTook time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var got int
		t0 := time.Now()
		if err := c.SealedLogOwned(ctx, gen, 500_000, func(ps []tsstore.Point) error { got += len(ps); return nil }); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if err := c.SealedColumns(ctx, gen, 500_000, func(cols *tsstore.Columns) error { got += cols.Len(); return nil }); err != nil {
			b.Fatal(err)
		}
		logTook, colTook = logTook+t1.Sub(t0), colTook+time.Since(t1)
		if got != 2*n {
			b.Fatalf("read %d points, want %d twice", got, n)
		}
	}
	b.ReportMetric(float64(logTook.Nanoseconds())/float64(b.N*n), "log-ns/point")
	b.ReportMetric(float64(colTook.Nanoseconds())/float64(b.N*n), "columns-ns/point")
}

// BenchmarkReplay measures Open on a log of 1,000,000 points of issue
// 19's workload: the replay that rebuilds the cells.
func BenchmarkReplay(b *testing.B) {
	dir := b.TempDir()
	c, err := localcache.Open(dir, &localcache.Options{Fsync: localcache.FsyncNever})
	if err != nil {
		b.Fatal(err)
	}
	const n = 1_000_000
	for _, bt := range issueBatches(n) {
		if err := c.Append(ctx, bt); err != nil {
			b.Fatal(err)
		}
	}
	if err := c.Close(); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c, err := localcache.Open(dir, nil)
		if err != nil {
			b.Fatal(err)
		}
		if got := c.Stats().Points; got != n {
			b.Fatalf("replayed %d points, want %d", got, n)
		}
		if err := c.Close(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/point")
}

// sealedIssueGen opens a cache in dir and returns it with the generation
// it sealed after n points of issue 19's workload (after what dir's open
// generation held).
func sealedIssueGen(tb testing.TB, dir string, n int) (*localcache.Cache, uint64) {
	c, err := localcache.Open(dir, &localcache.Options{Fsync: localcache.FsyncNever})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = c.Close() })
	for _, bt := range issueBatches(n) {
		if err := c.Append(ctx, bt); err != nil {
			tb.Fatal(err)
		}
	}
	gen, _, err := c.Seal(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	return c, gen
}
