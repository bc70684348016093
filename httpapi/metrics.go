package httpapi

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the Prometheus metrics of an API: requests and their latency
// by route, ingested points and refused requests by ingest API, store
// errors by operation. Register it with a prometheus.Registerer; a nil
// *Metrics counts nothing. Safe for concurrent use.
type Metrics struct {
	requests     *prometheus.CounterVec
	duration     *prometheus.HistogramVec
	ingestPoints *prometheus.CounterVec
	rejected     *prometheus.CounterVec
	storeErrors  *prometheus.CounterVec
}

var _ prometheus.Collector = (*Metrics)(nil)

// NewMetrics returns the metrics hourglass_http_requests_total,
// hourglass_http_request_duration_seconds, hourglass_ingest_points_total,
// hourglass_ingest_rejected_total and hourglass_store_errors_total (with
// the operations "flush" and "query" present from the start).
func NewMetrics() *Metrics {
	m := &Metrics{
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
		storeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hourglass_store_errors_total", Help: "Failed flushes and store queries, by operation.",
		}, []string{"op"}),
	}
	m.storeErrors.WithLabelValues("flush")
	m.storeErrors.WithLabelValues("query")
	return m
}

func (m *Metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.requests, m.duration, m.ingestPoints, m.rejected, m.storeErrors}
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range m.collectors() {
		c.Describe(ch)
	}
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	for _, c := range m.collectors() {
		c.Collect(ch)
	}
}

// StoreError counts a failure of the store (or another backend) in
// operation op, such as "flush" or "query".
func (m *Metrics) StoreError(op string) {
	if m != nil {
		m.storeErrors.WithLabelValues(op).Inc()
	}
}

func (m *Metrics) reject(api, reason string) {
	if m != nil {
		m.rejected.WithLabelValues(api, reason).Inc()
	}
}

func (m *Metrics) ingested(api string, points int) {
	if m != nil {
		m.ingestPoints.WithLabelValues(api).Add(float64(points))
	}
}

// Instrument counts and times the requests of h under the label route.
// On a nil *Metrics it returns h.
func (m *Metrics) Instrument(route string, h http.Handler) http.Handler {
	if m == nil {
		return h
	}
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
