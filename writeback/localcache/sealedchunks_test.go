package localcache_test

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"math"
	"runtime"
	"slices"
	"testing"

	"github.com/hourglass-io/hourglass/internal/cputime"
	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/writeback"
)

// chunkDigest hashes what an archive segment is made of: each chunk's
// series table, in its order, and its point columns.
func chunkDigest(chunks []*tsstore.Columns) string {
	h := sha256.New()
	var b []byte
	for _, c := range chunks {
		b = binary.AppendUvarint(b[:0], uint64(len(c.Series)))
		for _, s := range c.Series {
			b = append(binary.AppendUvarint(b, uint64(len(s.Metric))), s.Metric...)
			b = binary.AppendUvarint(b, uint64(len(s.Labels)))
			for _, l := range s.Labels {
				b = append(binary.AppendUvarint(b, uint64(len(l.Name))), l.Name...)
				b = append(binary.AppendUvarint(b, uint64(len(l.Value))), l.Value...)
			}
		}
		b = binary.AppendUvarint(b, uint64(c.Len()))
		for i := range c.Times {
			b = binary.AppendVarint(b, int64(c.IDs[i]))
			b = binary.AppendVarint(b, c.Times[i])
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(c.Values[i]))
		}
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// TestSealedColumnsPinned pins the chunks SealedColumns cuts a log into
// (which points in which chunk, in which order, and each chunk's series
// table): the archive's segments, and their digests, are made of them, and
// a flush replayed after an upgrade must make the same segments. The
// digests were taken with the reader of commit 1ac6be9.
func TestSealedColumnsPinned(t *testing.T) {
	for _, tc := range []struct {
		name string
		max  int
		want string
	}{
		{"one chunk", 100_000, "5d827f3e27e2eccf92a58789ae73c338f5ce69d89e662f9011ce22b1454eed91"},
		{"chunks across records", 7_777, "9439ac72b53216261e4ebb1df3eb9fa7eb972d69fbdfdd948fc252203ef6e2f0"},
		{"small chunks", 3, "47ed6b090a12a031ff3ba0bbcac2b4275318887076cdd883e07a166d943f975b"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The version 1 fixture's records, then version 2 ones.
			dir := t.TempDir()
			writeV1Fixture(t, dir)
			c, gen := sealedIssueGen(t, dir, 40_000)
			var chunks []*tsstore.Columns
			if err := c.SealedColumns(ctx, gen, tc.max, func(cols *tsstore.Columns) error {
				chunks = append(chunks, cols)
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if got := chunkDigest(chunks); got != tc.want {
				t.Errorf("SealedColumns(max %d): %d chunks of digest %s, want %s", tc.max, len(chunks), got, tc.want)
			}
			// Again, handing every chunk back (scribbled over, as an
			// archive may leave it) before the next is cut: the chunks
			// made in recycled memory are the same.
			for _, cols := range chunks {
				c.RecycleColumns(cols)
			}
			var copies []*tsstore.Columns
			if err := c.SealedColumns(ctx, gen, tc.max, func(cols *tsstore.Columns) error {
				copies = append(copies, &tsstore.Columns{
					Series: slices.Clone(cols.Series), IDs: slices.Clone(cols.IDs),
					Times: slices.Clone(cols.Times), Values: slices.Clone(cols.Values),
				})
				for i := range cols.IDs {
					cols.IDs[i], cols.Times[i], cols.Values[i] = -1, -1, -1
				}
				c.RecycleColumns(cols)
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if got := chunkDigest(copies); got != tc.want {
				t.Errorf("SealedColumns(max %d) recycling its chunks: %d chunks of digest %s, want %s", tc.max, len(copies), got, tc.want)
			}
		})
	}
}

// BenchmarkSealedColumns reads a sealed generation of 2,000,000 points of
// issue 19's workload back with SealedColumns, in chunks of the engine's
// default segment size, as the flush's archive step does: time and bytes
// allocated per point, and CPU time per point (which counts the garbage
// collector's work, and not the other processes on a shared machine).
//
//	go test -run '^$' -bench 'SealedColumns$' -benchtime 3x ./writeback/localcache/
func BenchmarkSealedColumns(b *testing.B) {
	const n = 2_000_000
	c, gen := sealedIssueGen(b, b.TempDir(), n)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	b.ResetTimer()
	c0 := cputime.Used()
	for i := 0; i < b.N; i++ {
		got := 0
		if err := c.SealedColumns(ctx, gen, writeback.DefaultSegmentPoints, func(cols *tsstore.Columns) error {
			got += cols.Len()
			return nil
		}); err != nil {
			b.Fatal(err)
		}
		if got != n {
			b.Fatalf("read %d points, want %d", got, n)
		}
	}
	b.StopTimer()
	cpu := cputime.Used() - c0
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/point")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N*n), "cpu-ns/point")
	b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/float64(b.N*n), "B/point")
}
