package amqpsource_test

import (
	"context"
	"fmt"

	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/writeback"
	"github.com/hourglass-io/hourglass/writeback/amqpsource"
)

// A write message's body: timestamps in milliseconds or RFC 3339.
func ExampleDecodeBatch() {
	points, err := amqpsource.DecodeBatch([]byte(`{"points": [
		{"metric": "views", "labels": {"merchant": "m1", "page": "/"}, "timestamp": 1772366400000, "value": 1},
		{"metric": "orders", "labels": {"merchant": "m1"}, "timestamp": "2026-03-01T12:00:00.5Z", "value": 2}
	]}`))
	if err != nil {
		panic(err)
	}
	for _, p := range points {
		fmt.Println(p.Metric, p.Labels, p.Timestamp, p.Value)
	}
	_, err = amqpsource.DecodeBatch([]byte(`{"points": [{"metric": "views", "timestamp": 1.5}]}`))
	fmt.Println(err)
	// Output:
	// views {merchant="m1", page="/"} 1772366400000 1
	// orders {merchant="m1"} 1772366400500 2
	// amqpsource: batch: timestamp 1.5 is not a whole number of milliseconds (invalid input)
}

// Feeding an engine from RabbitMQ, and publishing to it.
func ExampleOpen() {
	var eng *writeback.Engine // writeback.New(cache, store, opts)
	url := "amqp://guest:guest@127.0.0.1:5672/"
	c, err := amqpsource.Open(context.Background(), url, eng, "/var/lib/hourglass/amqp-journal", &amqpsource.Options{
		WriteQueue: "hourglass.writes", ReadQueue: "hourglass.reads",
	})
	if err != nil {
		panic(err)
	}
	defer c.Close()

	pub, err := amqpsource.OpenPublisher(context.Background(), url, &amqpsource.ClientOptions{Queue: "hourglass.writes"})
	if err != nil {
		panic(err)
	}
	defer pub.Close()
	ls, _ := tsstore.NewLabels("merchant", "m1")
	// The id is the idempotency key: publish again with the same id after
	// an error, and the batch is counted once.
	err = pub.Publish(context.Background(), "order-batch-42", []tsstore.Point{{Metric: "views", Labels: ls, Timestamp: 1772366400000, Value: 1}})
	fmt.Println(err)
}
