package main

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hourglass-io/hourglass/writeback"
)

// serverMetrics are the server's own Prometheus metrics; the engine's come
// from writeback.Engine.Collector (cache size, flush lag, store speed, ...).
type serverMetrics struct {
	requests      *prometheus.CounterVec
	duration      *prometheus.HistogramVec
	ingestPoints  *prometheus.CounterVec
	rejected      *prometheus.CounterVec
	flushDuration prometheus.Histogram
	flushBudget   prometheus.Gauge
	storeErrors   *prometheus.CounterVec
}

func newServerMetrics(reg prometheus.Registerer, budget time.Duration) *serverMetrics {
	m := &serverMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hourglass_http_requests_total", Help: "HTTP requests by route and status code.",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "hourglass_http_request_duration_seconds", Help: "HTTP request latency by route.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"route"}),
		ingestPoints: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hourglass_ingest_points_total", Help: "Raw points acknowledged, by ingest API (rate() of it is the ingest rate).",
		}, []string{"api"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hourglass_ingest_rejected_total", Help: "Ingest requests refused, by API and reason.",
		}, []string{"api", "reason"}),
		flushDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "hourglass_flush_duration_seconds", Help: "Duration of flushes; compare with hourglass_flush_budget_seconds.",
			Buckets: prometheus.ExponentialBuckets(0.01, 4, 10),
		}),
		flushBudget: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hourglass_flush_budget_seconds", Help: "The configured flush budget.",
		}),
		storeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hourglass_store_errors_total", Help: "Failed flushes and store queries, by operation.",
		}, []string{"op"}),
	}
	m.flushBudget.Set(budget.Seconds())
	m.storeErrors.WithLabelValues("flush")
	m.storeErrors.WithLabelValues("query")
	reg.MustRegister(m.requests, m.duration, m.ingestPoints, m.rejected, m.flushDuration, m.flushBudget, m.storeErrors)
	return m
}

// onFlush records a flush report (writeback.Options.OnFlush).
func (m *serverMetrics) onFlush(r writeback.FlushReport) {
	m.flushDuration.Observe(r.Duration.Seconds())
	if r.Err != nil {
		m.storeErrors.WithLabelValues("flush").Inc()
	}
}

// instrument counts and times the requests of one route.
func (m *serverMetrics) instrument(route string, h http.Handler) http.Handler {
	dur := m.duration.WithLabelValues(route)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		h.ServeHTTP(sw, r)
		dur.Observe(time.Since(start).Seconds())
		m.requests.WithLabelValues(route, strconv.Itoa(sw.code)).Inc()
	})
}

// statusWriter remembers the status code written.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	w.code = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
