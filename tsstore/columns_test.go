package tsstore_test

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

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
