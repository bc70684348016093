package balancer_test

import (
	"context"
	"fmt"
	"time"

	"github.com/hourglass-io/hourglass/balancer"
	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/tsstore/memstore"
)

func Example() {
	b := balancer.New(balancer.WeightedRoundRobin(), &balancer.Options[string]{Name: "app"})
	defer b.Close()
	b.Add(
		balancer.Backend[string]{ID: "app-1", Value: "10.0.0.1:8080", Weight: 2},
		balancer.Backend[string]{ID: "app-2", Value: "10.0.0.2:8080", Weight: 1},
	)
	for range 6 {
		c, err := b.Pick("")
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(c.ID(), c.Backend())
		c.Done(nil) // or the request's error
	}
	// Output:
	// app-1 10.0.0.1:8080
	// app-2 10.0.0.2:8080
	// app-1 10.0.0.1:8080
	// app-1 10.0.0.1:8080
	// app-2 10.0.0.2:8080
	// app-1 10.0.0.1:8080
}

func ExampleConsistentHash() {
	b := balancer.New(balancer.ConsistentHash(nil), &balancer.Options[string]{})
	defer b.Close()
	for _, id := range []string{"app-1", "app-2", "app-3"} {
		b.Add(balancer.Backend[string]{ID: id, Value: id})
	}
	first, _ := b.Pick("merchant-42")
	first.Done(nil)
	again, _ := b.Pick("merchant-42")
	again.Done(nil)
	fmt.Println(first.ID() == again.ID())
	// Output: true
}

func ExampleStoreRouter() {
	ctx := context.Background()
	b := balancer.New(balancer.PeakEWMA(nil), &balancer.Options[tsstore.Store]{Name: "replicas"})
	defer b.Close()
	cells := []tsstore.Cell{{Metric: "orders", Labels: tsstore.Labels{{Name: "merchant", Value: "m1"}}, Start: 0, Agg: tsstore.Agg{Count: 2, Sum: 5, Min: 2, Max: 3}}}
	for _, id := range []string{"primary", "standby"} {
		s := memstore.New(nil)
		defer s.Close()
		s.Write(ctx, cells)
		b.Add(balancer.Backend[tsstore.Store]{ID: id, Value: s})
	}
	r := balancer.NewStoreRouter(b, nil)
	res, err := r.Query(ctx, tsstore.Query{Metric: "orders", From: 0, To: 3_600_000, Step: time.Hour})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(res.Series[0].Labels, res.Series[0].Buckets[0].Count, res.Series[0].Buckets[0].Sum)
	// Output: {merchant="m1"} 2 5
}
