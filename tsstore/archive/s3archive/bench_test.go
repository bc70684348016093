package s3archive_test

import (
	"context"
	"sync"
	"testing"

	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/tsstore/archive"
	"github.com/hourglass-io/hourglass/tsstore/archive/dirarchive"
)

// benchSegmentPoints is the size of a benchmark segment: one flush of one
// shard.
const benchSegmentPoints = 100_000

// baseline holds the points/s of the dirarchive sub-benchmark of the same
// run, by benchmark, for the ratio reported by the s3 one.
var baseline sync.Map

// reportRatio reports points/s and, for the s3 backend, its ratio to the
// dirarchive figure of the same run.
func reportRatio(b *testing.B, key, backend string, pps float64) {
	b.ReportMetric(pps, "points/s")
	b.ReportMetric(0, "ns/op")
	if backend == "dir" {
		baseline.Store(key, pps)
	} else if v, ok := baseline.Load(key); ok {
		b.ReportMetric(pps/v.(float64), "s3/dir")
	}
}

type backend struct {
	name string
	open func(b *testing.B, prefix string) archive.Archive
}

func backends(b *testing.B) []backend {
	srv := sharedServer(b)
	return []backend{
		{"dir", func(b *testing.B, _ string) archive.Archive {
			a, err := dirarchive.Open(b.TempDir(), nil)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = a.Close() })
			return a
		}},
		{"s3", func(b *testing.B, prefix string) archive.Archive { return openArchive(b, srv, prefix, nil) }},
	}
}

// BenchmarkAppend appends segments of 100k points (3 metrics, 20k series,
// a 45-minute flush window) to dirarchive and to s3archive on the test
// server, and reports points/s and the ratio s3/dir.
func BenchmarkAppend(b *testing.B) {
	w := newWorkload()
	segs := make([][]tsstore.Point, 4)
	for i := range segs {
		segs[i] = w.points(uint64(i), benchSegmentPoints, base+int64(i)*2_700_000, 2_700_000, false)
	}
	for _, be := range backends(b) {
		b.Run(be.name, func(b *testing.B) {
			a := be.open(b, uniquePrefix(b))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				ps := segs[i%len(segs)]
				if _, err := a.Append(context.Background(), idOf("bench", uint64(i), 0, ps), ps); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			reportRatio(b, "append", be.name, float64(b.N*benchSegmentPoints)/b.Elapsed().Seconds())
		})
	}
}

// BenchmarkScan scans an archive of 20 segments of 100k points (2M
// points, 5 flushes of 4 shards) in each backend: everything, and one
// hour; it reports points read per second and the ratio s3/dir.
func BenchmarkScan(b *testing.B) {
	w := newWorkload()
	const segments = 20
	for _, be := range backends(b) {
		a := be.open(b, uniquePrefix(b))
		for s := 0; s < segments; s++ {
			flush := int64(s / 4)
			ps := w.points(uint64(s), benchSegmentPoints, base+flush*2_700_000, 2_700_000, false)
			if _, err := a.Append(context.Background(), idOf("bench", uint64(flush), s%4, ps), ps); err != nil {
				b.Fatal(err)
			}
		}
		for _, bc := range []struct {
			name string
			r    archive.ScanRequest
		}{
			{"all", archive.ScanRequest{From: 0, To: tsstore.MaxTimestamp}},
			{"hour", archive.ScanRequest{From: base + 3_600_000, To: base + 2*3_600_000}},
		} {
			b.Run(bc.name+"/"+be.name, func(b *testing.B) {
				segs, err := a.Segments(context.Background(), bc.r.From, bc.r.To)
				if err != nil {
					b.Fatal(err)
				}
				var read int64
				for _, s := range segs {
					read += s.Points
				}
				for i := 0; i < b.N; i++ {
					if _, err := count(context.Background(), a, bc.r); err != nil {
						b.Fatal(err)
					}
				}
				reportRatio(b, "scan-"+bc.name, be.name, float64(read)*float64(b.N)/b.Elapsed().Seconds())
			})
		}
	}
}
