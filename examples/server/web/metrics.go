package web

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// SettingsMetrics returns gauges of the two settings the operator view
// measures against and /metrics does not otherwise show: the flush interval
// (hourglass_flush_interval_seconds; the flush lag should stay under it
// plus the budget, hourglass_flush_budget_seconds) and the cache bound
// (hourglass_cache_max_bytes). Register them on the server's registry.
func SettingsMetrics(flushInterval time.Duration, maxCacheBytes int64) []prometheus.Collector {
	interval := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "hourglass_flush_interval_seconds", Help: "The configured flush interval; flush lag stays under it plus the flush budget.",
	})
	interval.Set(flushInterval.Seconds())
	bound := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "hourglass_cache_max_bytes", Help: "The configured cache bound; writes beyond it are refused with 503.",
	})
	bound.Set(float64(maxCacheBytes))
	return []prometheus.Collector{interval, bound}
}
