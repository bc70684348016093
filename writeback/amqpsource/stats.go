package amqpsource

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hourglass-io/hourglass/internal/promstats"
)

// Stats are a consumer's counters since Open and its latest view of the
// queues.
type Stats struct {
	// Consumed counts write deliveries, Reads read deliveries.
	Consumed, Reads int64
	// Acked counts deliveries acknowledged (written, duplicate, answered
	// or dead-lettered).
	Acked int64
	// Redelivered counts deliveries flagged redelivered by the broker.
	Redelivered int64
	// Duplicates counts write deliveries whose id was already applied.
	Duplicates int64
	// DeadLettered counts messages moved to the dead-letter queue.
	DeadLettered int64
	// Requeued counts deliveries returned to the queue after a transient
	// failure.
	Requeued int64
	// Reconnects counts lost connections.
	Reconnects int64
	// Points counts points written to the engine (markers excluded).
	Points int64
	// WriteQueueDepth, ReadQueueDepth and DeadLetterDepth are the ready
	// messages at the last poll (every LagInterval): the lag.
	WriteQueueDepth, ReadQueueDepth, DeadLetterDepth int64
	// MessageAge is the age of the last write delivery's Timestamp
	// property (0 when publishers set none).
	MessageAge time.Duration
	// Connected reports whether a session is consuming now.
	Connected bool
	// RememberedIDs is the number of message ids in the dedupe journal.
	RememberedIDs int
}

// Stats returns the consumer's current statistics.
func (c *Consumer) Stats() Stats {
	s := &c.stats
	out := Stats{
		Consumed: s.consumed.Load(), Reads: s.reads.Load(), Acked: s.acked.Load(),
		Redelivered: s.redelivered.Load(), Duplicates: s.duplicates.Load(),
		DeadLettered: s.deadLettered.Load(), Requeued: s.requeued.Load(),
		Reconnects: s.reconnects.Load(), Points: s.points.Load(),
		WriteQueueDepth: s.writeDepth.Load(), ReadQueueDepth: s.readDepth.Load(), DeadLetterDepth: s.deadDepth.Load(),
		Connected:     s.connected.Load(),
		RememberedIDs: c.j.size(),
	}
	if ts := s.lastTimestamp.Load(); ts != 0 {
		out.MessageAge = time.Since(time.Unix(0, ts))
	}
	return out
}

// Collector returns a Prometheus collector of the consumer's Stats, with
// metric names prefixed hourglass_amqpsource_. Register it yourself.
func (c *Consumer) Collector() prometheus.Collector {
	return &promstats.Collector[Stats]{Snapshot: c.Stats, Metrics: metrics}
}

var metrics = []promstats.Metric[Stats]{
	counter("consumed_total", "Write deliveries consumed.", func(s *Stats) float64 { return float64(s.Consumed) }),
	counter("reads_total", "Read requests consumed.", func(s *Stats) float64 { return float64(s.Reads) }),
	counter("acked_total", "Deliveries acknowledged.", func(s *Stats) float64 { return float64(s.Acked) }),
	counter("redelivered_total", "Deliveries flagged redelivered.", func(s *Stats) float64 { return float64(s.Redelivered) }),
	counter("duplicates_total", "Write deliveries skipped as already applied.", func(s *Stats) float64 { return float64(s.Duplicates) }),
	counter("dead_lettered_total", "Messages moved to the dead-letter queue.", func(s *Stats) float64 { return float64(s.DeadLettered) }),
	counter("requeued_total", "Deliveries requeued after a transient failure.", func(s *Stats) float64 { return float64(s.Requeued) }),
	counter("reconnects_total", "Lost broker connections.", func(s *Stats) float64 { return float64(s.Reconnects) }),
	counter("points_total", "Points written to the engine.", func(s *Stats) float64 { return float64(s.Points) }),
	gauge("write_queue_depth", "Ready messages in the write queue (lag).", func(s *Stats) float64 { return float64(s.WriteQueueDepth) }),
	gauge("read_queue_depth", "Ready messages in the read queue.", func(s *Stats) float64 { return float64(s.ReadQueueDepth) }),
	gauge("dead_letter_depth", "Messages in the dead-letter queue.", func(s *Stats) float64 { return float64(s.DeadLetterDepth) }),
	gauge("message_age_seconds", "Age of the last write delivery's timestamp (lag).", func(s *Stats) float64 { return s.MessageAge.Seconds() }),
	gauge("connected", "1 while consuming.", func(s *Stats) float64 { return promstats.Bool(s.Connected) }),
	gauge("remembered_ids", "Message ids in the dedupe journal.", func(s *Stats) float64 { return float64(s.RememberedIDs) }),
}

func gauge(name, help string, v func(*Stats) float64) promstats.Metric[Stats] {
	return promstats.Gauge("hourglass_amqpsource_"+name, help, v)
}

func counter(name, help string, v func(*Stats) float64) promstats.Metric[Stats] {
	return promstats.Counter("hourglass_amqpsource_"+name, help, v)
}
