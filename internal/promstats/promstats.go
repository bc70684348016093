// Package promstats exposes a component's stats snapshot (a struct of
// counters and gauges, such as writeback.Stats) as a Prometheus collector:
// each metric is a description and a function reading it off the
// snapshot, taken once per scrape.
package promstats

import "github.com/prometheus/client_golang/prometheus"

// Metric is one metric read off a snapshot of type S.
type Metric[S any] struct {
	desc  *prometheus.Desc
	kind  prometheus.ValueType
	value func(*S) float64
}

// Gauge describes a gauge named name (the full name) read by value.
func Gauge[S any](name, help string, value func(*S) float64) Metric[S] {
	return Metric[S]{prometheus.NewDesc(name, help, nil, nil), prometheus.GaugeValue, value}
}

// Counter describes a counter named name (the full name) read by value.
func Counter[S any](name, help string, value func(*S) float64) Metric[S] {
	return Metric[S]{prometheus.NewDesc(name, help, nil, nil), prometheus.CounterValue, value}
}

// Bool is 1 for true and 0 for false.
func Bool(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// Collector collects Metrics from one Snapshot per scrape.
type Collector[S any] struct {
	Snapshot func() S
	Metrics  []Metric[S]
}

// Describe implements prometheus.Collector.
func (c *Collector[S]) Describe(ch chan<- *prometheus.Desc) {
	for _, m := range c.Metrics {
		ch <- m.desc
	}
}

// Collect implements prometheus.Collector.
func (c *Collector[S]) Collect(ch chan<- prometheus.Metric) {
	s := c.Snapshot()
	for _, m := range c.Metrics {
		ch <- prometheus.MustNewConstMetric(m.desc, m.kind, m.value(&s))
	}
}
