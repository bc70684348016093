package tsstore_test

import (
	"context"
	"fmt"
	"time"

	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/tsstore/memstore"
)

// Example shows the model end to end on the reference store: two partial
// cells of the same minute (two flushes) and a query that merges them
// exactly.
func Example() {
	ctx := context.Background()
	store := memstore.New(nil)
	merchant, _ := tsstore.NewLabels("merchant", "acme")
	start := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC).UnixMilli()

	first := tsstore.Cell{Metric: "revenue", Labels: merchant, Start: start, Seq: 0, Agg: tsstore.AggOf(30)}
	first.Add(12)
	late := tsstore.Cell{Metric: "revenue", Labels: merchant, Start: start, Seq: 1, Agg: tsstore.AggOf(8)}
	if err := store.Write(ctx, []tsstore.Cell{first, late}); err != nil {
		fmt.Println(err)
		return
	}
	m, _ := tsstore.NewMatcher(tsstore.MatchEqual, "merchant", "acme")
	res, err := store.Query(ctx, tsstore.Query{
		Metric: "revenue", Matchers: []tsstore.Matcher{m},
		From: start, To: start + time.Hour.Milliseconds(), Step: time.Hour,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, s := range res.Series {
		for _, b := range s.Buckets {
			fmt.Printf("%s %s: count %d, sum %v, min %v, max %v, mean %.2f\n",
				s.Labels, tsstore.TimeOf(b.Start).Format(time.Kitchen), b.Count, b.Sum, b.Min, b.Max, b.Mean())
		}
	}
	// Output:
	// {merchant="acme"} 12:00PM: count 3, sum 50, min 8, max 30, mean 16.67
}

// ExampleErrorf shows how errors are classified.
func ExampleErrorf() {
	err := tsstore.Errorf(tsstore.ErrUnavailable, "store: %w", context.DeadlineExceeded)
	fmt.Println(err)
	fmt.Println(tsstore.IsRetryable(err))
	// Output:
	// store: context deadline exceeded (unavailable)
	// false
}
