package dirarchive_test

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/tsstore/archive"
	"github.com/hourglass-io/hourglass/tsstore/archive/dirarchive"
)

// benchSegmentPoints is the size of a benchmark segment: one flush of one
// shard.
const benchSegmentPoints = 100_000

// BenchmarkAppend appends segments of 100k points (3 metrics, 20k series,
// a 45-minute flush window) and reports points/s and bytes per point on
// disk.
func BenchmarkAppend(b *testing.B) {
	w := newWorkload()
	a, err := dirarchive.Open(b.TempDir(), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer a.Close()
	segs := make([][]tsstore.Point, 4)
	for i := range segs {
		segs[i] = w.points(uint64(i), benchSegmentPoints, base+int64(i)*2_700_000, 2_700_000)
	}
	var bytes int64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ps := segs[i%len(segs)]
		info, err := a.Append(context.Background(), idOf("bench", uint64(i), 0, ps), ps)
		if err != nil {
			b.Fatal(err)
		}
		bytes += info.Bytes
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N*benchSegmentPoints)/b.Elapsed().Seconds(), "points/s")
	b.ReportMetric(float64(bytes)/float64(b.N*benchSegmentPoints), "bytes/point")
	b.ReportMetric(0, "ns/op")
}

// scanArchive is the 10-million-point archive of BenchmarkScan, built once
// per process: 100 segments of 100k points, 4 shards per 45-minute flush,
// about 19 hours of data.
var scanArchive struct {
	once sync.Once
	dir  string
	err  error
}

const scanPoints = 10_000_000

func buildScanArchive(b *testing.B) string {
	scanArchive.once.Do(func() {
		dir, err := os.MkdirTemp("", "dirarchive-bench-")
		if err != nil {
			scanArchive.err = err
			return
		}
		scanArchive.dir = dir
		a, err := dirarchive.Open(filepath.Join(dir, "archive"), nil)
		if err != nil {
			scanArchive.err = err
			return
		}
		defer a.Close()
		w := newWorkload()
		start := time.Now()
		var wg sync.WaitGroup
		errs := make(chan error, 2)
		for g := 0; g < 2; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for s := g; s < scanPoints/benchSegmentPoints; s += 2 {
					flush := int64(s / 4)
					ps := w.points(uint64(s), benchSegmentPoints, base+flush*2_700_000, 2_700_000)
					if _, err := a.Append(context.Background(), idOf("bench", uint64(flush), s%4, ps), ps); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		scanArchive.err = <-errs
		st, _ := a.Stat(context.Background())
		b.Logf("built a %d-point archive of %d segments, %d MB, in %v", st.Points, st.Segments, st.Bytes>>20, time.Since(start).Round(time.Second))
	})
	if scanArchive.err != nil {
		b.Fatal(scanArchive.err)
	}
	return filepath.Join(scanArchive.dir, "archive")
}

// BenchmarkScan scans the 10-million-point archive: everything, one hour,
// and one merchant's points of everything (a label filter); it reports the
// points read per second (points/s) and returned.
func BenchmarkScan(b *testing.B) {
	dir := buildScanArchive(b)
	defer func() { _ = os.RemoveAll(filepath.Dir(dir)) }()
	a, err := dirarchive.Open(dir, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer a.Close()
	m, err := tsstore.NewMatcher(tsstore.MatchEqual, "merchant", "m0042")
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name string
		r    archive.ScanRequest
	}{
		{"all", archive.ScanRequest{From: 0, To: tsstore.MaxTimestamp}},
		{"hour", archive.ScanRequest{From: base + 5*3_600_000, To: base + 6*3_600_000}},
		{"merchant", archive.ScanRequest{From: 0, To: tsstore.MaxTimestamp, Matchers: []tsstore.Matcher{m}}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			segs, err := a.Segments(context.Background(), bc.r.From, bc.r.To)
			if err != nil {
				b.Fatal(err)
			}
			var read int64
			for _, s := range segs {
				read += s.Points
			}
			var n int
			for i := 0; i < b.N; i++ {
				if n, err = count(context.Background(), a, bc.r); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(read)*float64(b.N)/b.Elapsed().Seconds(), "points/s")
			b.ReportMetric(float64(n), "points/scan")
			b.ReportMetric(0, "ns/op")
		})
	}
}
