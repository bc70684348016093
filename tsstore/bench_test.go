package tsstore_test

import (
	"testing"

	"github.com/hourglass-io/hourglass/tsstore"
)

// BenchmarkAggMerge measures merging one aggregate into another.
//
//	go test -run '^$' -bench AggMerge ./tsstore/
func BenchmarkAggMerge(b *testing.B) {
	a := tsstore.AggOf(1)
	o := tsstore.Agg{Count: 3, Sum: 10, Min: -2, Max: 7}
	for i := 0; i < b.N; i++ {
		a.Merge(o)
	}
	if a.Count == 0 {
		b.Fatal("no merge")
	}
}

// BenchmarkPointValidate measures validating a point with two labels.
func BenchmarkPointValidate(b *testing.B) {
	ls, _ := tsstore.NewLabels("merchant", "m000042", "page", "/checkout")
	p := tsstore.Point{Metric: "views", Labels: ls, Timestamp: 1_700_000_000_000, Value: 1}
	for i := 0; i < b.N; i++ {
		if err := p.Validate(); err != nil {
			b.Fatal(err)
		}
	}
}
