package segment

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/hourglass-io/hourglass/tsstore"
)

// The benchmarks of the three steps of an archive append (see
// dirarchive.AppendColumns) on a segment of the flush benchmark's workload
// (benchPoints: a million points of 40,000 series, in random time order),
// each reporting its CPU time (the garbage collector's included) and its
// allocated bytes per point:
//
//	go test -run '^$' -bench 'PrepareColumns$|Digest$|EncodeBatch$' -benchtime 10x ./tsstore/archive/internal/segment/

// measure is the start of a measure of b.N operations on n points each.
type measure struct {
	b   *testing.B
	n   int
	m0  runtime.MemStats
	cpu time.Duration
}

// start starts the measure and resets b's timer.
func start(b *testing.B, n int) *measure {
	m := &measure{b: b, n: n}
	runtime.GC()
	runtime.ReadMemStats(&m.m0)
	m.cpu = cpuTime()
	b.ResetTimer()
	return m
}

// report reports the process's CPU time (the work of the garbage
// collector included; on a shared machine it varies less than the wall
// clock) and the bytes allocated per point since start.
func (m *measure) report() {
	cpu := cpuTime() - m.cpu
	m.b.StopTimer()
	var m1 runtime.MemStats
	runtime.ReadMemStats(&m1)
	per := float64(m.b.N) * float64(m.n)
	m.b.ReportMetric(float64(cpu.Nanoseconds())/per, "cpu-ns/point")
	m.b.ReportMetric(float64(m1.TotalAlloc-m.m0.TotalAlloc)/per, "B/point")
}

func BenchmarkPrepareColumns(b *testing.B) {
	ps := benchPoints()
	c := ColumnsOf(ps)
	in := make([]*tsstore.Columns, b.N)
	for i := range in {
		in[i] = cloneColumns(c)
	}
	m := start(b, len(ps))
	for i := range b.N {
		PrepareColumns(in[i])
	}
	m.report()
}

// BenchmarkDigest measures the content digest of each version: "v2" is
// Batch.Digest, "v1" the digest of older segments, computed again only
// when an append meets one.
func BenchmarkDigest(b *testing.B) {
	ps := benchPoints()
	batch := Prepare(ps)
	for _, v := range []int{DigestV2, DigestV1} {
		b.Run(fmt.Sprint("v", v), func(b *testing.B) {
			m := start(b, len(ps))
			for range b.N {
				if _, err := batch.DigestIn(v); err != nil {
					b.Fatal(err)
				}
			}
			m.report()
		})
	}
}

func BenchmarkEncodeBatch(b *testing.B) {
	ps := benchPoints()
	batch := Prepare(ps)
	var w countingDiscard
	m := start(b, len(ps))
	for range b.N {
		if err := batch.Encode(&w, "n", "c", EncodeOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	m.report()
}
