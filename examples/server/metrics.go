package main

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hourglass-io/hourglass/httpapi"
	"github.com/hourglass-io/hourglass/writeback"
)

// flushMetrics are the server's metrics of flushes; the HTTP layer's come
// from httpapi.Metrics, the engine's from writeback.Engine.Collector
// (cache size, flush lag, store speed, ...).
type flushMetrics struct {
	duration prometheus.Histogram
	budget   prometheus.Gauge
	http     *httpapi.Metrics // counts failed flushes as store errors
}

func newFlushMetrics(reg prometheus.Registerer, budget time.Duration, h *httpapi.Metrics) *flushMetrics {
	m := &flushMetrics{
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "hourglass_flush_duration_seconds", Help: "Duration of flushes; compare with hourglass_flush_budget_seconds.",
			Buckets: prometheus.ExponentialBuckets(0.01, 4, 10),
		}),
		budget: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hourglass_flush_budget_seconds", Help: "The configured flush budget.",
		}),
		http: h,
	}
	m.budget.Set(budget.Seconds())
	reg.MustRegister(m.duration, m.budget)
	return m
}

// onFlush records a flush report (writeback.Options.OnFlush).
func (m *flushMetrics) onFlush(r writeback.FlushReport) {
	m.duration.Observe(r.Duration.Seconds())
	if r.Err != nil {
		m.http.StoreError("flush")
	}
}
