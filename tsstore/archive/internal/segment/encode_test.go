package segment

import (
	"bytes"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"
	"pgregory.net/rapid"

	"github.com/hourglass-io/hourglass/tsstore"
)

// TestWriterMatchesValuesEncoder checks, on random batches, that the files
// of the segment writer and of parquet.Writer (encodeValues) read back, by
// ReadAll and by parquet.OpenFile, as the batch's points, with the
// segment's schema, row groups and metadata.
func TestWriterMatchesValuesEncoder(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		b := PrepareColumns(genColumns(t))
		want := b.Points()
		rg := rapid.IntRange(1, b.Len()+1).Draw(t, "rowGroupRows")
		const name, content = "2026/01/01/00/src-g1-s0-1-2.parquet", "digest"
		written, err := b.EncodeBytes(name, content, EncodeOptions{RowGroupRows: rg, pageRows: rapid.IntRange(1, 700).Draw(t, "pageRows")})
		if err != nil {
			t.Fatal(err)
		}
		var values bytes.Buffer
		if err := b.encodeValues(&values, name, content, EncodeOptions{RowGroupRows: rg}); err != nil {
			t.Fatal(err)
		}
		for _, f := range []struct {
			name string
			data []byte
		}{{"segment writer", written}, {"parquet.Writer", values.Bytes()}} {
			got, err := ReadAll(bytes.NewReader(f.data), int64(len(f.data)))
			if err != nil {
				t.Fatalf("%s: ReadAll: %v", f.name, err)
			}
			checkSamePoints(t, f.name+": ReadAll", want, got)
			pf, err := parquet.OpenFile(bytes.NewReader(f.data), int64(len(f.data)))
			if err != nil {
				t.Fatalf("%s: parquet.OpenFile: %v", f.name, err)
			}
			if pf.Schema().String() != Schema.String() {
				t.Fatalf("%s: schema\n%s\nwant\n%s", f.name, pf.Schema(), Schema)
			}
			if n, want := len(pf.RowGroups()), (b.Len()+rg-1)/rg; n != want || pf.NumRows() != int64(b.Len()) {
				t.Fatalf("%s: %d rows in %d row groups, want %d in %d", f.name, pf.NumRows(), n, b.Len(), want)
			}
			// Values are byte-stream-split (see zstdLevel), in every row
			// group of both writers.
			for _, g := range pf.Metadata().RowGroups {
				if enc := g.Columns[schemaColumns.value].MetaData.Encoding; !slices.Equal(enc, []format.Encoding{format.ByteStreamSplit}) {
					t.Fatalf("%s: the value column's encodings are %v, want [BYTE_STREAM_SPLIT]", f.name, enc)
				}
			}
			for k, v := range map[string]string{KeyName: name, KeyContent: content, KeyFormat: Format} {
				if got, _ := pf.Lookup(k); got != v {
					t.Fatalf("%s: metadata %s = %q, want %q", f.name, k, got, v)
				}
			}
			// parquet-go's own row reader, through the file's schema.
			rows, err := parquet.Read[Row](bytes.NewReader(f.data), int64(len(f.data)))
			if err != nil {
				t.Fatalf("%s: parquet.Read: %v", f.name, err)
			}
			var read []tsstore.Point
			for _, r := range rows {
				ls, err := tsstore.FromMap(r.Labels)
				if err != nil {
					t.Fatal(err)
				}
				read = append(read, tsstore.Point{Metric: r.Metric, Labels: ls, Timestamp: r.Time, Value: r.Value})
			}
			checkSamePoints(t, f.name+": parquet.Read", want, read)
		}
	})
}

// checkSamePoints fails unless got are want, field by field (values bit
// for bit, labels by content).
func checkSamePoints(t *rapid.T, what string, want, got []tsstore.Point) {
	if len(got) != len(want) {
		t.Fatalf("%s: %d points, want %d", what, len(got), len(want))
	}
	for i := range want {
		w, g := want[i], got[i]
		if g.Metric != w.Metric || g.Timestamp != w.Timestamp || math.Float64bits(g.Value) != math.Float64bits(w.Value) || g.Labels.Compare(w.Labels) != 0 {
			t.Fatalf("%s: point %d is %v, want %v", what, i, g, w)
		}
	}
}

// genColumns draws the columns of a random segment: a few series (with
// no labels, many, long or unicode values, repeated entries), points
// with equal timestamps and values, signed zeros.
func genColumns(t *rapid.T) *tsstore.Columns {
	labelName := rapid.StringMatching(`[a-zA-Z][a-zA-Z0-9_]{0,12}`)
	labelValue := rapid.OneOf(rapid.SampledFrom([]string{"m1", "ü,=\"\\\n", "日本語", strings.Repeat("x", tsstore.MaxValueLen), "a b"}),
		rapid.StringN(1, 40, -1))
	nSeries := rapid.IntRange(1, 30).Draw(t, "series")
	// Often every series has as many labels (the writer's fast path).
	lo, hi := 0, 12
	if n := rapid.IntRange(-1, 3).Draw(t, "labelsEach"); n >= 0 {
		lo, hi = n, n
	}
	c := &tsstore.Columns{}
	// Often every series has the same label names (the writer reuses a
	// page of names).
	var sharedNames []string
	if rapid.Bool().Draw(t, "sameNames") {
		sharedNames = rapid.SliceOfNDistinct(labelName, lo, hi, func(s string) string { return s }).Draw(t, "sharedNames")
	}
	for range nSeries {
		names := slices.Clone(sharedNames)
		if names == nil {
			names = rapid.SliceOfNDistinct(labelName, lo, hi, func(s string) string { return s }).Draw(t, "names")
		}
		slices.Sort(names)
		var ls tsstore.Labels
		for _, n := range names {
			ls = append(ls, tsstore.Label{Name: n, Value: labelValue.Draw(t, "value")})
		}
		metric := rapid.SampledFrom([]string{"views", "orders", "a:b_c", "z"}).Draw(t, "metric")
		c.Series = append(c.Series, tsstore.SeriesLabels{Metric: metric, Labels: ls})
		if rapid.Bool().Draw(t, "repeat") { // an entry of the same content
			c.Series = append(c.Series, tsstore.SeriesLabels{Metric: metric, Labels: slices.Clone(ls)})
		}
	}
	n := rapid.IntRange(1, 600).Draw(t, "points")
	base := rapid.Int64Range(0, tsstore.MaxTimestamp-1-(1<<40)).Draw(t, "base")
	span := rapid.SampledFrom([]int64{1, 10, 1 << 20, 1 << 40}).Draw(t, "span")
	negZero := math.Copysign(0, -1)
	value := rapid.OneOf(rapid.SampledFrom([]float64{0, negZero, 1, -1.5, 1e300, -1e-300, 5e-324}), rapid.Float64().Filter(func(v float64) bool { return !math.IsInf(v, 0) && !math.IsNaN(v) }))
	for range n {
		c.IDs = append(c.IDs, int32(rapid.IntRange(0, len(c.Series)-1).Draw(t, "id")))
		c.Times = append(c.Times, base+rapid.Int64Range(0, span-1).Draw(t, "time"))
		c.Values = append(c.Values, value.Draw(t, "v"))
	}
	return c
}

// TestWriterMetadata checks that the segment writer's file metadata is
// parquet.Writer's: the schema elements, column orders, creator and
// key/value metadata; and that its column chunks carry the bounds of the
// time and the metric.
func TestWriterMetadata(t *testing.T) {
	ps := Sorted(points(t, 3000))
	b := Prepare(ps)
	written, err := b.EncodeBytes("n", "c", EncodeOptions{RowGroupRows: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var values bytes.Buffer
	if err := b.encodeValues(&values, "n", "c", EncodeOptions{RowGroupRows: 1000}); err != nil {
		t.Fatal(err)
	}
	open := func(data []byte) *parquet.File {
		f, err := parquet.OpenFile(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	got, want := open(written).Metadata(), open(values.Bytes()).Metadata()
	for _, c := range []struct {
		what      string
		got, want any
	}{
		{"schema", got.Schema, want.Schema}, {"column orders", got.ColumnOrders, want.ColumnOrders},
		{"created by", got.CreatedBy, want.CreatedBy}, {"key/value metadata", got.KeyValueMetadata, want.KeyValueMetadata},
		{"version", got.Version, want.Version}, {"rows", got.NumRows, want.NumRows},
	} {
		if d := cmp.Diff(c.want, c.got); d != "" {
			t.Errorf("%s (-parquet.Writer +segment writer):\n%s", c.what, d)
		}
	}
	for i, rg := range got.RowGroups {
		for j, col := range rg.Columns {
			wantCol := want.RowGroups[i].Columns[j].MetaData
			m := col.MetaData
			if m.Type != wantCol.Type || !slices.Equal(m.PathInSchema, wantCol.PathInSchema) || m.NumValues != wantCol.NumValues ||
				m.Codec != wantCol.Codec || !slices.Equal(m.Encoding, wantCol.Encoding) {
				t.Errorf("row group %d column %d: %+v, want %+v", i, j, m, wantCol)
			}
			s, ws := m.Statistics, wantCol.Statistics
			if !bytes.Equal(s.MinValue, ws.MinValue) || !bytes.Equal(s.MaxValue, ws.MaxValue) || s.NullCount != ws.NullCount {
				t.Errorf("row group %d column %s: statistics %+v, want %+v", i, strings.Join(m.PathInSchema, "."), s, ws)
			}
		}
	}
	if len(got.RowGroups) != 3 {
		t.Errorf("%d row groups, want 3", len(got.RowGroups))
	}
}

// writeRecorder records the sizes of the writes it gets.
type writeRecorder struct{ total, largest, writes int }

func (w *writeRecorder) Write(p []byte) (int, error) {
	w.total += len(p)
	w.largest = max(w.largest, len(p))
	w.writes++
	return len(p), nil
}

// TestEncodeStreams checks that the writer writes a file page by page
// rather than building it in memory: no write is larger than a page of
// a column.
func TestEncodeStreams(t *testing.T) {
	ps := benchPoints()[:300_000]
	b := Prepare(ps)
	var w writeRecorder
	if err := b.Encode(&w, "n", "c", EncodeOptions{RowGroupRows: 100_000, pageRows: 10_000}); err != nil {
		t.Fatal(err)
	}
	// A page of 10,000 doubles is 80,000 bytes before compression.
	if w.largest > 80_000 || w.writes < 5*30 {
		t.Errorf("%d bytes in %d writes, the largest of %d bytes: want pages of at most 80,000 bytes", w.total, w.writes, w.largest)
	}
}

// TestBounds checks bounds against the builtins min and max, which give
// the same values (the same NaN bits) but for the sign of a zero bound.
func TestBounds(t *testing.T) {
	same := func(a, b float64) bool {
		return math.Float64bits(a) == math.Float64bits(b) || (a == 0 && b == 0)
	}
	values := rapid.SampledFrom([]float64{0, negZero(), 1, -1, 2.5, math.Inf(1), math.Inf(-1), math.NaN(), math.Float64frombits(0x7ff8000000000001), math.MaxFloat64, -math.SmallestNonzeroFloat64})
	rapid.Check(t, func(t *rapid.T) {
		vs := rapid.SliceOfN(values, 1, 20).Draw(t, "vs")
		lo, hi := vs[0], vs[0]
		for _, v := range vs {
			lo, hi = min(lo, v), max(hi, v)
		}
		if gotLo, gotHi := bounds(vs); !same(gotLo, lo) || !same(gotHi, hi) {
			t.Fatalf("bounds(%v) = %v, %v; want %v, %v", vs, gotLo, gotHi, lo, hi)
		}
	})
}
