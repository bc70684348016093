package amqpsource_test

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hourglass-io/hourglass/internal/servertest"
	"github.com/hourglass-io/hourglass/tsstore/memstore"
	"github.com/hourglass-io/hourglass/writeback/amqpsource"
)

const benchBatch = 100 // points per message

// publishAll publishes n batches from 8 goroutines over one Publisher.
func publishAll(b *testing.B, pub *amqpsource.Publisher, n int, base int64) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := pub.Publish(ctx, fmt.Sprintf("bench-%d", i), batchPoints(i, benchBatch, base)); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// BenchmarkQueue compares the broker's own limit, publishing batches with
// confirms ("publish"), with draining the same number of batches from the
// queue into an engine over localcache (fsync every 100 ms) and memstore
// ("consume": decode, journal fsync, engine write, ack). events/s counts
// points.
func BenchmarkQueue(b *testing.B) {
	url := servertest.AMQP(b)
	base := time.Now().UnixMilli()
	b.Run("publish", func(b *testing.B) {
		o := queues(b, url)
		pub := openPublisher(b, url, o.WriteQueue)
		b.ResetTimer()
		publishAll(b, pub, b.N, base)
		b.ReportMetric(float64(b.N*benchBatch)/b.Elapsed().Seconds(), "events/s")
	})
	b.Run("consume", func(b *testing.B) {
		o := queues(b, url)
		o.DisableReads = true
		pub := openPublisher(b, url, o.WriteQueue)
		publishAll(b, pub, b.N, base)
		eng := newEngine(b, b.TempDir(), memstore.New(nil))
		b.ResetTimer()
		c := openConsumer(b, url, eng, o)
		for c.Stats().Points < int64(b.N*benchBatch) {
			time.Sleep(time.Millisecond)
		}
		b.StopTimer()
		b.ReportMetric(float64(b.N*benchBatch)/b.Elapsed().Seconds(), "events/s")
	})
}
