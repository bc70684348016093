package segment

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/klauspost/compress/zstd"
	"github.com/parquet-go/parquet-go"
	pqzstd "github.com/parquet-go/parquet-go/compress/zstd"
	"github.com/parquet-go/parquet-go/format"
	"pgregory.net/rapid"

	"github.com/hourglass-io/hourglass/internal/cputime"
	"github.com/hourglass-io/hourglass/tsstore"
)

// plainRow is Row as it was before values were byte-stream-split.
type plainRow struct {
	Time   int64             `parquet:"time,timestamp(millisecond),delta"`
	Metric string            `parquet:"metric,dict"`
	Labels map[string]string `parquet:"labels" parquet-key:",dict" parquet-value:",dict"`
	Value  float64           `parquet:"value"`
}

// encodeRows is the encoder of format 1 before columnar writes: one Row
// (with a map of labels) per point through parquet-go's reflection (with
// the writer options of today: before, the label columns had page bounds
// too). Files it made are in archives and must stay readable.
func encodeRows(t *testing.T, ps []tsstore.Point, opts ...parquet.WriterOption) []byte {
	return writeRows(t, ps, func(p tsstore.Point) Row {
		return Row{Time: p.Timestamp, Metric: p.Metric, Value: p.Value, Labels: labelMap(p.Labels)}
	}, opts...)
}

// encodePlainRows is encodeRows with plain values, as every version wrote
// them before values were byte-stream-split: opts' schema is replaced.
func encodePlainRows(t *testing.T, ps []tsstore.Point, opts ...parquet.WriterOption) []byte {
	opts = append(opts, parquet.NewSchema(Schema.Name(), parquet.SchemaOf(plainRow{})))
	return writeRows(t, ps, func(p tsstore.Point) plainRow {
		return plainRow{Time: p.Timestamp, Metric: p.Metric, Value: p.Value, Labels: labelMap(p.Labels)}
	}, opts...)
}

func writeRows[R any](t *testing.T, ps []tsstore.Point, row func(tsstore.Point) R, opts ...parquet.WriterOption) []byte {
	t.Helper()
	var b bytes.Buffer
	pw := parquet.NewGenericWriter[R](&b, opts...)
	for _, p := range ps {
		if _, err := pw.Write([]R{row(p)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := pw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func labelMap(ls tsstore.Labels) map[string]string {
	m := map[string]string{}
	for _, l := range ls {
		m[l.Name] = l.Value
	}
	return m
}

// copies returns ps with every labels slice copied: content-equal series
// that do not share memory.
func copies(ps []tsstore.Point) []tsstore.Point {
	out := slices.Clone(ps)
	for i := range out {
		out[i].Labels = slices.Clone(out[i].Labels)
	}
	return out
}

func TestPrepareSortsLikeCompare(t *testing.T) {
	ps := append(points(t, 3000), copies(points(t, 3000))...)
	// Ties on time and series, broken by value and by the sign of zero.
	ps = append(ps, tsstore.Point{Metric: "views", Timestamp: 1000, Value: 0}, tsstore.Point{Metric: "views", Timestamp: 1000, Value: -1},
		tsstore.Point{Metric: "views", Timestamp: 1000, Value: negZero()})
	rand.Shuffle(len(ps), func(i, j int) { ps[i], ps[j] = ps[j], ps[i] })
	want := slices.Clone(ps)
	slices.SortStableFunc(want, func(a, b tsstore.Point) int { return Compare(&a, &b) })
	got := Prepare(ps).Points()
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("Prepare's order differs from Compare's (-want +got):\n%s", d)
	}
	for i := 1; i < len(got); i++ {
		if Compare(&got[i-1], &got[i]) > 0 {
			t.Fatalf("points %d and %d out of order", i-1, i)
		}
	}
	// Again, smaller, with the memory of the first.
	few := slices.Clone(ps[:100])
	want = slices.Clone(few)
	slices.SortStableFunc(want, func(a, b tsstore.Point) int { return Compare(&a, &b) })
	if d := cmp.Diff(want, Prepare(few).Points()); d != "" {
		t.Fatalf("a second, smaller Prepare (-want +got):\n%s", d)
	}
}

func negZero() float64 { z := 0.0; return -z }

func TestColumnarEncodingReadsLikeRows(t *testing.T) {
	ps := Sorted(append(points(t, 4000), copies(points(t, 1000))...))
	content := Digest(ps)
	if got := Prepare(ps).Digest(); got != content {
		t.Fatalf("Batch.Digest %s, Digest %s", got, content)
	}
	written, err := Prepare(ps).EncodeBytes("n", content, EncodeOptions{RowGroupRows: 1500})
	if err != nil {
		t.Fatal(err)
	}
	var cols bytes.Buffer
	if err := Prepare(ps).encodeValues(&cols, "n", content, EncodeOptions{RowGroupRows: 1500}); err != nil {
		t.Fatal(err)
	}
	rows := encodeRows(t, ps, append(writerOptions("n", content), parquet.MaxRowsPerRowGroup(1500))...)
	// As the first encoder wrote them, with bounds of every column and
	// plain values.
	old := encodePlainRows(t, ps, Schema, parquet.Compression(&pqzstd.Codec{}), parquet.MaxRowsPerRowGroup(1500),
		parquet.CreatedBy("hourglass", "", ""), parquet.KeyValueMetadata(KeyName, "n"),
		parquet.KeyValueMetadata(KeyContent, content), parquet.KeyValueMetadata(KeyFormat, Format))
	for name, b := range map[string][]byte{"segment writer": written, "columnar values": cols.Bytes(), "rows": rows, "first encoder": old} {
		got, err := ReadAll(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if d := cmp.Diff(ps, got); d != "" {
			t.Fatalf("%s: read back (-want +got):\n%s", name, d)
		}
		f, err := parquet.OpenFile(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			t.Fatal(err)
		}
		if f.Schema().String() != Schema.String() {
			t.Errorf("%s: schema\n%s\nwant\n%s", name, f.Schema(), Schema)
		}
		if n := len(f.RowGroups()); n != 4 {
			t.Errorf("%s: %d row groups, want 4", name, n)
		}
		want := []format.Encoding{format.ByteStreamSplit}
		if name == "first encoder" {
			want = []format.Encoding{format.Plain}
		}
		for _, g := range f.Metadata().RowGroups {
			if enc := g.Columns[schemaColumns.value].MetaData.Encoding; !slices.Equal(enc, want) {
				t.Fatalf("%s: the value column's encodings are %v, want %v", name, enc, want)
			}
		}
		// Another reader: parquet-go's reflection into a map per row.
		generic, err := parquet.Read[Row](bytes.NewReader(b), int64(len(b)))
		if err != nil {
			t.Fatalf("%s: parquet.Read: %v", name, err)
		}
		for i, r := range generic {
			ls, err := tsstore.FromMap(r.Labels)
			if err != nil {
				t.Fatal(err)
			}
			p := tsstore.Point{Metric: r.Metric, Labels: ls, Timestamp: r.Time, Value: r.Value}
			if len(ls) == 0 {
				p.Labels = nil
			}
			if Compare(&p, &ps[i]) != 0 {
				t.Fatalf("%s: parquet.Read row %d is %+v, want %+v", name, i, p, ps[i])
			}
		}
	}
	if !bytes.Equal(cols.Bytes(), rows) {
		t.Errorf("the columnar encoding (%d bytes) differs from the row encoding (%d bytes)", cols.Len(), len(rows))
	}
}

// benchPoints are a segment of the flush benchmark's workload: 20,000
// series of 2 metrics, labels merchant and page, timestamps over 30
// minutes in random order.
func benchPoints() []tsstore.Point {
	var ps []tsstore.Point
	sets := make([]tsstore.Labels, 20_000)
	for i := range sets {
		sets[i] = tsstore.Labels{{Name: "merchant", Value: fmt.Sprintf("merchant-%d", i%5000)}, {Name: "page", Value: fmt.Sprintf("/p/%d", i/5000)}}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 1_000_000 / 2 {
		ls, ts := sets[r.IntN(len(sets))], 1_800_000_000_000+r.Int64N(1_800_000)
		ps = append(ps, tsstore.Point{Metric: "web_views", Labels: ls, Timestamp: ts, Value: 1},
			tsstore.Point{Metric: "web_ms", Labels: ls, Timestamp: ts, Value: float64(r.IntN(2000))})
	}
	return ps
}

func cloneColumns(c *tsstore.Columns) *tsstore.Columns {
	return &tsstore.Columns{Series: slices.Clone(c.Series), IDs: slices.Clone(c.IDs), Times: slices.Clone(c.Times), Values: slices.Clone(c.Values)}
}

// perPoint runs fn b.N times and reports its CPU time (garbage
// collection included) and its allocated bytes per point of n; setup,
// when not nil, runs before each call, outside the measure, and returns
// fn's argument. A collection before each call leaves fn the collections
// its own allocations cause (and empties the pools: their memory counts
// as allocated, as after a quiet spell).
func perPoint[T any](b *testing.B, n int, setup func() T, fn func(T)) {
	var d time.Duration
	var alloc uint64
	var m0, m1 runtime.MemStats
	for range b.N {
		var arg T
		if setup != nil {
			arg = setup()
		}
		runtime.GC()
		runtime.ReadMemStats(&m0)
		c0 := cputime.Used()
		fn(arg)
		d += cputime.Used() - c0
		runtime.ReadMemStats(&m1)
		alloc += m1.TotalAlloc - m0.TotalAlloc
	}
	b.ReportMetric(float64(d.Nanoseconds())/float64(b.N*n), "cpu-ns/point")
	b.ReportMetric(float64(alloc)/float64(b.N*n), "B/point")
}

// BenchmarkEncode measures a segment of the flush benchmark's workload:
// Prepare of its columns, Digest (and the digest of version 1), and Encode by the segment writer
// ("writer") and by parquet.Writer ("values", the encoder before it), with
// the CPU time (garbage collection included) and file size per point.
//
//	go test -run '^$' -bench Encode -benchtime 3x ./tsstore/archive/internal/segment/
func BenchmarkEncode(b *testing.B) {
	ps := benchPoints()
	b.Run("prepare-points", func(b *testing.B) {
		perPoint(b, len(ps), nil, func(struct{}) { Prepare(ps) })
	})
	c := ColumnsOf(ps)
	b.Run("prepare-columns", func(b *testing.B) {
		perPoint(b, len(ps), func() *tsstore.Columns { return cloneColumns(c) }, func(c *tsstore.Columns) { PrepareColumns(c) })
	})
	batch := Prepare(ps)
	b.Run("digest", func(b *testing.B) {
		perPoint(b, len(ps), nil, func(struct{}) { batch.Digest() })
	})
	// The digest of version 1, computed again only when an append meets a
	// record of an older segment.
	b.Run("digest-v1", func(b *testing.B) {
		perPoint(b, len(ps), nil, func(struct{}) { batch.digestV1() })
	})
	for _, enc := range []struct {
		name   string
		encode func(io.Writer, string, string, EncodeOptions) error
		o      EncodeOptions
	}{
		{"writer", batch.Encode, EncodeOptions{}},
		{"writer-zstd-default", batch.Encode, EncodeOptions{zstdLevel: zstd.SpeedDefault}},
		{"values", batch.encodeValues, EncodeOptions{}},
	} {
		b.Run("encode-"+enc.name, func(b *testing.B) {
			var w countingDiscard
			perPoint(b, len(ps), nil, func(struct{}) {
				if err := enc.encode(&w, "n", "c", enc.o); err != nil {
					b.Fatal(err)
				}
			})
			b.ReportMetric(float64(w.n)/float64(b.N*len(ps)), "bytes/point")
		})
	}
}

type countingDiscard struct{ n int64 }

func (w *countingDiscard) Write(p []byte) (int, error) {
	w.n += int64(len(p))
	return len(p), nil
}

// TestPrepareWithoutRadix checks the comparison sort that takes over when
// timestamps and series ranks do not fit in 64 bits together. Valid
// columns never need it (it would take more than 2^19 series over some
// 1,000 years): its timestamps are out of the valid range, which
// PrepareColumns does not check.
func TestPrepareWithoutRadix(t *testing.T) {
	ps := points(t, 2000)
	for i := range ps {
		switch i % 3 {
		case 0:
			ps[i].Timestamp = math.MaxInt64 - int64(i%10)
		case 1:
			ps[i].Timestamp = math.MinInt64 + int64(i%10)
		}
	}
	c := ColumnsOf(ps)
	if _, ok := layout(c.Times, len(c.Series)); ok {
		t.Fatal("the keys fit in 64 bits: the comparison sort is not tested")
	}
	checkPrepare(t, c)
}

// TestPrepareBuckets checks PrepareColumns on segments whose keys fill the
// radix sort's buckets unevenly: all points in one bucket, one point per
// bucket, a bucket too large for the cache with bits left to sort by,
// runs of points of one key longer than an insertion sort takes, and keys
// of all 64 bits.
func TestPrepareBuckets(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 5))
	values := []float64{0, negZero(), 1, -1, math.Inf(1), math.NaN(), -math.NaN(), math.Float64frombits(0x7ff0_0000_0000_0001)}
	value := func() float64 { return values[r.IntN(len(values))] }
	cases := []struct {
		name   string
		n      int
		series int
		time   func(i int) int64
	}{
		{"one point", 1, 1, func(int) int64 { return 5 }},
		{"a few points", 10, 3, func(i int) int64 { return int64(i % 4) }},
		{"one key", 20_000, 1, func(int) int64 { return 1_800_000_000_000 }},
		{"one time", 20_000, 3, func(int) int64 { return 1_800_000_000_000 }},
		{"one point per bucket", 5000, 1, func(i int) int64 { return int64(i) << 20 }},
		{"a large bucket of many series", 20_000, 2000, func(i int) int64 {
			if i%2 == 0 {
				return 1_800_000_000_000
			}
			return 1_800_000_000_000 + r.Int64N(3_600_000)
		}},
		{"long runs in cache", 3000, 3, func(int) int64 { return r.Int64N(20) }},
		{"long runs out of cache", 100_000, 50, func(int) int64 { return r.Int64N(1000) }},
		{"keys of 64 bits", 10_000, 3, func(int) int64 { return r.Int64N(1 << 62) }},
		{"the benchmark's", 50_000, 20_000, func(int) int64 { return 1_800_000_000_000 + r.Int64N(1_800_000) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := &tsstore.Columns{}
			for i := range tc.series {
				c.Series = append(c.Series, tsstore.SeriesLabels{Metric: "m", Labels: tsstore.Labels{{Name: "s", Value: fmt.Sprint(i)}}})
			}
			for i := range tc.n {
				c.IDs = append(c.IDs, int32(r.IntN(tc.series)))
				c.Times = append(c.Times, tc.time(i))
				c.Values = append(c.Values, value())
			}
			// The cases that name a path of the sort take it.
			k, _ := layout(c.Times, len(c.Series))
			if tc.name == "keys of 64 bits" && k.tsBits+k.rankBits != 64 {
				t.Fatalf("keys of %d bits", k.tsBits+k.rankBits)
			}
			if tc.name == "a large bucket of many series" {
				if most := largestBucket(t, c.Times, k); most <= cacheSize {
					t.Fatalf("the largest bucket holds %d points, not more than the cache's %d", most, cacheSize)
				}
			}
			checkPrepare(t, c)
		})
	}
}

// largestBucket returns the number of points of the largest bucket of
// sortPoints' first pass, when it splits by time alone (shifts out the
// series' bits).
func largestBucket(t *testing.T, times []int64, k keyLayout) int {
	width := k.tsBits + k.rankBits
	shift := width - splitDigit(len(times), width)
	if shift < k.rankBits {
		t.Fatalf("the first pass splits by series too (shift %d, %d bits of series)", shift, k.rankBits)
	}
	count := map[int64]int{}
	most := 0
	for _, ts := range times {
		d := (ts - k.lo) >> (shift - k.rankBits)
		count[d]++
		most = max(most, count[d])
	}
	return most
}

// TestPrepareSortsColumnsLikeCompare checks PrepareColumns on random
// columns: timestamps over a span of 0 to 64 bits, series from a table
// with content-equal entries, and values that tie.
func TestPrepareSortsColumnsLikeCompare(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		c := &tsstore.Columns{}
		for range rapid.IntRange(1, 40).Draw(t, "series") {
			c.Series = append(c.Series, tsstore.SeriesLabels{Metric: rapid.SampledFrom([]string{"a", "b"}).Draw(t, "metric"),
				Labels: tsstore.Labels{{Name: "l", Value: rapid.SampledFrom([]string{"x", "y", "z"}).Draw(t, "label")}}})
		}
		span := rapid.IntRange(0, 64).Draw(t, "span")
		base := rapid.Int64().Draw(t, "base")
		value := rapid.SampledFrom([]float64{0, negZero(), 2, math.Inf(-1), math.NaN()})
		for range rapid.IntRange(0, 6000).Draw(t, "points") {
			c.IDs = append(c.IDs, rapid.Int32Range(0, int32(len(c.Series)-1)).Draw(t, "id"))
			c.Times = append(c.Times, base+int64(rapid.Uint64().Draw(t, "time")>>(64-span)))
			c.Values = append(c.Values, value.Draw(t, "value"))
		}
		checkPrepare(t, c)
	})
}

// checkPrepare checks that PrepareColumns of c (a copy) has c's points in
// the order of Compare.
func checkPrepare(t interface {
	Helper()
	Fatalf(string, ...any)
}, c *tsstore.Columns) {
	t.Helper()
	want := c.AppendPoints(nil)
	slices.SortFunc(want, func(a, b tsstore.Point) int { return Compare(&a, &b) })
	got := PrepareColumns(cloneColumns(c)).Points()
	if len(got) != len(want) {
		t.Fatalf("%d points, want %d", len(got), len(want))
	}
	for i := range got {
		// Compare tells values apart by their bits, where cmp.Diff would
		// find a NaN unequal to itself.
		if Compare(&got[i], &want[i]) != 0 {
			t.Fatalf("point %d is %+v, want %+v", i, got[i], want[i])
		}
	}
}

// TestDigestIsStable pins the content digest of version 1 of a fixed
// segment to the value the row encoder of a790c97 computed for it:
// manifests keep digests, and a retried flush of a generation archived by
// an older version must find the same digest (the same content is a no-op,
// another is a conflict).
func TestDigestIsStable(t *testing.T) {
	var ps []tsstore.Point
	for i := range 50 {
		ls := tsstore.Labels{{Name: "currency", Value: []string{"EUR", "USD"}[i%2]}, {Name: "merchant", Value: fmt.Sprintf("m%d", i%7)}}
		ps = append(ps, tsstore.Point{Metric: []string{"orders", "revenue"}[i%3%2], Labels: ls, Timestamp: 1767225600000 + int64(i*7919%60000), Value: float64(i) * 1.25})
	}
	ps = append(ps, tsstore.Point{Metric: "views", Timestamp: 1767225600000, Value: 1})
	checkDigests(t, ps, "b8f7e370f5eafc5f05e7727f3de25414f571773b0efeb5b892a55af8dd954d3e", "a790c97",
		"v2:793379648bef30129cc796ad05ee7acf849b6eb2281af6303ae18d963f5bf17e")
}

// checkDigests checks the digests of ps: of version 1, v1 (pinned at
// commit of), and of version 2, v2.
func checkDigests(t *testing.T, ps []tsstore.Point, v1, of, v2 string) {
	t.Helper()
	if got, _ := Prepare(ps).DigestIn(DigestV1); got != v1 {
		t.Errorf("Prepare(ps).DigestIn(DigestV1) = %s, want %s (the digest of %s)", got, v1, of)
	}
	if got := Prepare(ps).Digest(); got != v2 {
		t.Errorf("Prepare(ps).Digest() = %s, want %s (version 2)", got, v2)
	}
}

// TestSeriesKeyOrder checks that the byte order of series keys is the
// order of (metric, labels), also for strings holding 0x00 and 0x01 bytes
// and for a string or label set that extends another.
func TestSeriesKeyOrder(t *testing.T) {
	str := rapid.StringOf(rapid.SampledFrom([]rune{0, 1, 'a', 0xff}))
	series := rapid.Custom(func(t *rapid.T) tsstore.SeriesLabels {
		s := tsstore.SeriesLabels{Metric: rapid.SampledFrom([]string{"a", "a\x00", "ab"}).Draw(t, "metric")}
		for range rapid.IntRange(0, 3).Draw(t, "labels") {
			s.Labels = append(s.Labels, tsstore.Label{Name: str.Draw(t, "name"), Value: str.Draw(t, "value")})
		}
		return s
	})
	rapid.Check(t, func(t *rapid.T) {
		a, b := series.Draw(t, "a"), series.Draw(t, "b")
		want := strings.Compare(a.Metric, b.Metric)
		if want == 0 {
			want = a.Labels.Compare(b.Labels)
		}
		if got := bytes.Compare(appendSeriesKey(nil, &a), appendSeriesKey(nil, &b)); got != want {
			t.Fatalf("keys of %q and %q compare %d, the series %d", a, b, got, want)
		}
	})
}

// TestRankSeries checks that rankSeries returns the distinct series that
// ids name, in (metric, labels) order, and ranks each used entry at its
// content.
func TestRankSeries(t *testing.T) {
	str := rapid.StringOf(rapid.SampledFrom([]rune{0, 1, 'a', 0xff}))
	series := rapid.Custom(func(t *rapid.T) tsstore.SeriesLabels {
		s := tsstore.SeriesLabels{Metric: rapid.SampledFrom([]string{"a", "a\x00", "ab"}).Draw(t, "metric")}
		for range rapid.IntRange(0, 2).Draw(t, "labels") {
			s.Labels = append(s.Labels, tsstore.Label{Name: str.Draw(t, "name"), Value: str.Draw(t, "value")})
		}
		return s
	})
	compare := func(a, b tsstore.SeriesLabels) int {
		if c := strings.Compare(a.Metric, b.Metric); c != 0 {
			return c
		}
		return a.Labels.Compare(b.Labels)
	}
	rapid.Check(t, func(t *rapid.T) {
		tab := rapid.SliceOfN(series, 1, 40).Draw(t, "tab")
		ids := rapid.SliceOfN(rapid.Int32Range(0, int32(len(tab)-1)), 1, 100).Draw(t, "ids")
		sorted, rank := rankSeries(tab, ids, new(scratch))
		for i := 1; i < len(sorted); i++ {
			if compare(sorted[i-1], sorted[i]) >= 0 {
				t.Fatalf("series %d and %d (%q, %q) not in order or not distinct", i-1, i, sorted[i-1], sorted[i])
			}
		}
		used := map[int32]bool{}
		for _, id := range ids {
			used[id] = true
			if compare(sorted[rank[id]], tab[id]) != 0 {
				t.Fatalf("entry %d (%q) ranked at %d (%q)", id, tab[id], rank[id], sorted[rank[id]])
			}
		}
		for _, s := range sorted {
			if !slices.ContainsFunc(ids, func(id int32) bool { return compare(tab[id], s) == 0 }) {
				t.Fatalf("series %q is no point's", s)
			}
		}
	})
}

// TestDigestOfManySeriesIsStable pins the content digest of version 1 of a segment of
// many series, with canonical forms from a few bytes (no labels) to
// hundreds, and points sharing timestamps, to the value of 1ac6be9 (before
// the digest wrote series by fixed-size copies).
func TestDigestOfManySeriesIsStable(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 11))
	sets := make([]tsstore.SeriesLabels, 3000)
	for i := range sets {
		s := &sets[i]
		s.Metric = []string{"m", "web_views", "a_rather_long_metric_name_of_some_exporter_seconds_total"}[i%3]
		for j := range i % 5 {
			s.Labels = append(s.Labels, tsstore.Label{Name: fmt.Sprintf("label_%d", j), Value: strings.Repeat("v", r.IntN(40)) + fmt.Sprint(i)})
		}
	}
	ps := make([]tsstore.Point, 20_000)
	for i := range ps {
		s := &sets[r.IntN(len(sets))]
		ps[i] = tsstore.Point{Metric: s.Metric, Labels: s.Labels, Timestamp: 1767225600000 + r.Int64N(5000), Value: float64(r.IntN(100)) / 4}
	}
	checkDigests(t, ps, "3c96c3cd0fd649b1074353607cd56ed141b744f87e370587ed4399dc941ab917", "1ac6be9",
		"v2:60d05f8eb4c4fe6a3965b673948b696825caf0fc725a98529ccc34b539ef0061")
}
