package segment

import (
	"runtime"
	"testing"

	"github.com/hourglass-io/hourglass/tsstore"
)

// The benchmarks of the three steps of an archive append (see
// dirarchive.AppendColumns) on a segment of the flush benchmark's workload
// (benchPoints: a million points of 40,000 series, in random time order),
// each reporting its time and its allocated bytes per point:
//
//	go test -run '^$' -bench 'PrepareColumns|Digest|EncodeBatch' -benchtime 5x ./tsstore/archive/internal/segment/

// reportPerPoint reports the time and the bytes allocated per point of n
// since the timer was last reset, over b.N operations; m0 is the memory
// statistics read then.
func reportPerPoint(b *testing.B, n int, m0 *runtime.MemStats) {
	var m1 runtime.MemStats
	runtime.ReadMemStats(&m1)
	per := float64(b.N) * float64(n)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/per, "ns/point")
	b.ReportMetric(float64(m1.TotalAlloc-m0.TotalAlloc)/per, "B/point")
}

func BenchmarkPrepareColumns(b *testing.B) {
	c := ColumnsOf(benchPoints())
	in := make([]*tsstore.Columns, b.N)
	for i := range in {
		in[i] = cloneColumns(c)
	}
	var m0 runtime.MemStats
	runtime.ReadMemStats(&m0)
	b.ResetTimer()
	for i := range b.N {
		PrepareColumns(in[i])
	}
	b.StopTimer()
	reportPerPoint(b, c.Len(), &m0)
}

func BenchmarkDigest(b *testing.B) {
	batch := Prepare(benchPoints())
	var m0 runtime.MemStats
	runtime.ReadMemStats(&m0)
	b.ResetTimer()
	for range b.N {
		batch.Digest()
	}
	b.StopTimer()
	reportPerPoint(b, batch.Len(), &m0)
}

func BenchmarkEncodeBatch(b *testing.B) {
	batch := Prepare(benchPoints())
	var w countingDiscard
	var m0 runtime.MemStats
	runtime.ReadMemStats(&m0)
	b.ResetTimer()
	for range b.N {
		if err := batch.Encode(&w, "n", "c", EncodeOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	reportPerPoint(b, batch.Len(), &m0)
}
