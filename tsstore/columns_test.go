package tsstore_test

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"pgregory.net/rapid"

	"github.com/hourglass-io/hourglass/tsstore"
)

func TestColumns(t *testing.T) {
	a := tsstore.Labels{{Name: "merchant", Value: "m1"}}
	c := &tsstore.Columns{
		Series: []tsstore.SeriesLabels{{Metric: "views", Labels: a}, {Metric: "ms"}},
		IDs:    []int32{1, 0, 0},
		Times:  []int64{3, 1, 2},
		Values: []float64{30, 10, 20},
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	want := []tsstore.Point{
		{Metric: "ms", Timestamp: 3, Value: 30},
		{Metric: "views", Labels: a, Timestamp: 1, Value: 10},
		{Metric: "views", Labels: a, Timestamp: 2, Value: 20},
	}
	if diff := cmp.Diff(want, c.AppendPoints(nil)); diff != "" {
		t.Errorf("points (-want +got):\n%s", diff)
	}
	for _, tc := range []struct {
		name string
		mod  func(c *tsstore.Columns)
		want string
	}{
		{"short values", func(c *tsstore.Columns) { c.Values = c.Values[:2] }, "3 ids, 3 times and 2 values"},
		{"id out of range", func(c *tsstore.Columns) { c.IDs[2] = 2 }, "point 2: series 2 of 2"},
		{"negative id", func(c *tsstore.Columns) { c.IDs[0] = -1 }, "point 0: series -1 of 2"},
		{"bad metric", func(c *tsstore.Columns) { c.Series[0].Metric = "9x" }, "point 1: "},
		{"bad label", func(c *tsstore.Columns) { c.Series[1].Labels = tsstore.Labels{{Name: "", Value: "x"}} }, "point 0: metric ms"},
		{"NaN", func(c *tsstore.Columns) { c.Values[2] = math.NaN() }, "point 2: views"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad := &tsstore.Columns{
				Series: append([]tsstore.SeriesLabels(nil), c.Series...),
				IDs:    append([]int32(nil), c.IDs...),
				Times:  append([]int64(nil), c.Times...),
				Values: append([]float64(nil), c.Values...),
			}
			tc.mod(bad)
			err := bad.Validate()
			if !errors.Is(err, tsstore.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate = %v, want ErrInvalid containing %q", err, tc.want)
			}
		})
	}
}

// TestColumnsValid checks Valid, Validate's fast path, against Validate
// and a plain range check, on columns that mix valid points with every
// kind of fault at random: NaN, ±Inf and the largest finite values,
// timestamps at and around 0, MaxTimestamp and the range's ends, ids out
// of range, bad series, columns of unequal length.
func TestColumnsValid(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		series := []tsstore.SeriesLabels{
			{Metric: "views", Labels: tsstore.Labels{{Name: "merchant", Value: "m1"}}},
			{Metric: "ms"},
		}
		if rapid.IntRange(0, 9).Draw(t, "badSeries") == 0 {
			series = append(series, tsstore.SeriesLabels{Metric: "9x"})
		}
		from := rapid.Int64Range(-5, 100).Draw(t, "from")
		to := rapid.SampledFrom([]int64{from - 1, from, from + 50, tsstore.MaxTimestamp - 1, tsstore.MaxTimestamp, math.MaxInt64}).Draw(t, "to")
		times := rapid.SampledFrom([]int64{-1, 0, 1, from - 1, from, from + 1, from + 50, from + 51, tsstore.MaxTimestamp - 1, tsstore.MaxTimestamp, math.MinInt64, math.MaxInt64})
		values := rapid.SampledFrom([]float64{0, -1, 1.5, math.MaxFloat64, -math.MaxFloat64, math.SmallestNonzeroFloat64, math.Copysign(0, -1), math.NaN(), math.Inf(1), math.Inf(-1), math.Float64frombits(0x7ff0000000000001)})
		n := rapid.IntRange(0, 20).Draw(t, "n")
		c := &tsstore.Columns{Series: series}
		for i := 0; i < n; i++ {
			c.IDs = append(c.IDs, rapid.Int32Range(-1, int32(len(series))).Draw(t, "id"))
			c.Times = append(c.Times, times.Draw(t, "time"))
			c.Values = append(c.Values, values.Draw(t, "value"))
		}
		if n > 0 && rapid.IntRange(0, 9).Draw(t, "short") == 0 {
			c.Values = c.Values[:n-1]
		}
		want := c.Validate() == nil
		if want {
			for _, ts := range c.Times {
				want = want && ts >= from && ts <= to
			}
		}
		if got := c.Valid(from, to); got != want {
			t.Fatalf("Valid(%d, %d) = %v, want %v (Validate: %v) for %+v", from, to, got, want, c.Validate(), c)
		}
	})
}

// BenchmarkColumnsValidate validates a segment's worth of valid columns
// (1,000,000 points of 40,000 series): CPU time a point.
//
//	go test -run '^$' -bench ColumnsValidate ./tsstore/
func BenchmarkColumnsValidate(b *testing.B) {
	const n, nSeries = 1_000_000, 40_000
	c := &tsstore.Columns{}
	for i := 0; i < nSeries; i++ {
		c.Series = append(c.Series, tsstore.SeriesLabels{Metric: "web_views", Labels: tsstore.Labels{
			{Name: "merchant", Value: fmt.Sprintf("m%03d", i/400)}, {Name: "page", Value: fmt.Sprintf("/p/%03d", i%400)}}})
	}
	for i := 0; i < n; i++ {
		c.IDs = append(c.IDs, int32(i*7919%nSeries))
		c.Times = append(c.Times, 1_700_000_000_000+int64(i*7)%1_800_000)
		c.Values = append(c.Values, float64(i%2000))
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := c.Validate(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/point")
}
