package rediscache

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/google/go-cmp/cmp"

	"github.com/hourglass-io/hourglass/tsstore"
)

// TestLogRoundTrip encodes batches with repeated and new series, integer
// and fractional values, and decodes them; the cells prepared from them
// equal the points aggregated one by one.
func TestLogRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 5))
	var enc logEncoder
	var pc preparedCells
	for round := 0; round < 50; round++ {
		ps := make([]tsstore.Point, r.IntN(300))
		for i := range ps {
			kv := []string{"merchant", []string{"m1", "m2", "", "ß"}[r.IntN(4)]}
			if r.IntN(2) == 0 {
				kv = append(kv, "page", []string{"/a", "/b"}[r.IntN(2)])
			}
			ls, _ := tsstore.NewLabels(kv...)
			v := float64(r.IntN(100) - 50)
			if r.IntN(3) == 0 {
				v = r.NormFloat64()
			}
			if r.IntN(50) == 0 {
				v = math.Copysign(0, -1)
			}
			ps[i] = tsstore.Point{Metric: []string{"views", "orders"}[r.IntN(2)], Labels: ls, Timestamp: 1_700_000_000_000 + r.Int64N(int64(3*time.Minute/time.Millisecond)) - 60_000, Value: v}
		}
		entry := enc.encode(ps)
		pc.prepare(ps, 60_000, "merchant")
		got, err := decodeLog(nil, entry)
		if err != nil {
			t.Fatalf("round %d: decode: %v", round, err)
		}
		if d := cmp.Diff(ps, got, cmp.Comparer(func(a, b float64) bool { return math.Float64bits(a) == math.Float64bits(b) })); d != "" {
			t.Fatalf("round %d: (-encoded +decoded):\n%s", round, d)
		}
		if n, err := entryPoints(string(entry)); err != nil || n != int64(len(ps)) {
			t.Errorf("entryPoints = %d, %v; want %d", n, err, len(ps))
		}
		want := map[string]tsstore.Agg{}
		for _, p := range ps {
			f := string(appendField(nil, p.Metric, p.Labels.Get("merchant"), tsstore.CellStart(p.Timestamp, time.Minute), p.Labels, "merchant"))
			a := want[f]
			a.Add(p.Value)
			want[f] = a
		}
		have := map[string]tsstore.Agg{}
		for _, c := range pc.cells {
			f := string(pc.buf[c.off:c.end])
			if c.hash != xxhash.Sum64String(f) {
				t.Fatalf("round %d: cell %q has a wrong hash", round, f)
			}
			a := have[f]
			a.Add(c.v)
			have[f] = a
		}
		if d := cmp.Diff(want, have); d != "" {
			t.Fatalf("round %d: cells (-want +got):\n%s", round, d)
		}
	}
	if _, err := decodeLog(nil, []byte{9, 0, 0}); err == nil {
		t.Error("an unknown version decoded")
	}
}

// BenchmarkEncode measures the client's work per batch of 1,000 points
// before it is sent: the log entry and the cells.
func BenchmarkEncode(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	z := rand.NewZipf(r, 1.1, 1, 9999)
	ps := make([]tsstore.Point, 1000)
	for i := range ps {
		ls, _ := tsstore.NewLabels("merchant", "m"+string(rune('a'+z.Uint64()%26))+string(rune('a'+z.Uint64()%26)), "page", "/p"+string(rune('0'+r.IntN(8))))
		ps[i] = tsstore.Point{Metric: []string{"views", "orders", "revenue", "sessions"}[r.IntN(4)], Labels: ls, Timestamp: 1_700_000_000_000 + r.Int64N(1000), Value: float64(r.IntN(1000))}
	}
	var enc logEncoder
	var pc preparedCells
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		enc.encode(ps)
		pc.prepare(ps, 60_000, "merchant")
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1000, "ns/point")
}

// TestMemtableHashCollision inserts different fields with the same hash:
// each keeps its own cell, and repeated fields merge.
func TestMemtableHashCollision(t *testing.T) {
	m := newMemtable(1, 0)
	var pc preparedCells
	fields := []string{"views\xffm1\xff", "views\xffm2\xff", "views\xffm1\xff", "views\xffm3\xff", "views\xffm2\xff"}
	for i, f := range fields {
		off := len(pc.buf)
		pc.buf = append(pc.buf, f...)
		pc.cells = append(pc.cells, preparedCell{value: f[6:8], off: off, end: len(pc.buf), hash: 42, v: float64(i)})
	}
	if n := m.insert(0, "b1", &pc); n != 3 {
		t.Fatalf("insert made %d cells, want 3", n)
	}
	if n := m.insert(0, "b2", &pc); n != 0 {
		t.Fatalf("the same batch again made %d cells, want 0", n)
	}
	ms := &m.shards[0]
	got := map[string]uint64{}
	for _, c := range ms.collect(nil, "views", "", false) {
		got[c.field] = c.agg.Count
	}
	want := map[string]uint64{fields[0]: 4, fields[1]: 4, fields[3]: 2}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("cells (-want +got):\n%s", d)
	}
	if c := ms.collect(nil, "views", "m2", true); len(c) != 1 || c[0].agg.Sum != 2*(1+4) {
		t.Errorf("cells of m2: %+v", c)
	}
}
