package balancer

import (
	"github.com/prometheus/client_golang/prometheus"
)

var (
	descPicks = prometheus.NewDesc("hourglass_balancer_picks_total",
		"Picks of a backend since it was added.", []string{"balancer", "backend"}, nil)
	descFailures = prometheus.NewDesc("hourglass_balancer_failures_total",
		"Requests to a backend completed with an error.", []string{"balancer", "backend"}, nil)
	descInFlight = prometheus.NewDesc("hourglass_balancer_in_flight",
		"Requests picked for a backend and not yet completed.", []string{"balancer", "backend"}, nil)
	descEjections = prometheus.NewDesc("hourglass_balancer_ejections_total",
		"Passive outlier ejections of a backend.", []string{"balancer", "backend"}, nil)
	descHealthy = prometheus.NewDesc("hourglass_balancer_healthy",
		"1 if a backend passes its active health checks.", []string{"balancer", "backend"}, nil)
	descEjected = prometheus.NewDesc("hourglass_balancer_ejected",
		"1 if a backend is ejected after failures.", []string{"balancer", "backend"}, nil)
	descPanic = prometheus.NewDesc("hourglass_balancer_panic",
		"1 if too few backends are usable and the balancer picks among all.", []string{"balancer"}, nil)
)

// Collector returns a prometheus.Collector for the balancer's state, to
// register where wanted (metrics are opt-in). It reads the backends' counters
// at scrape time, so it costs nothing on the pick path. Metrics, labelled
// by balancer name and backend ID: hourglass_balancer_picks_total,
// _failures_total, _in_flight, _ejections_total, _healthy, _ejected, and
// hourglass_balancer_panic.
func (b *Balancer[B]) Collector() prometheus.Collector { return collector[B]{b} }

type collector[B any] struct{ b *Balancer[B] }

func (c collector[B]) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descPicks, descFailures, descInFlight, descEjections, descHealthy, descEjected, descPanic} {
		ch <- d
	}
}

func (c collector[B]) Collect(ch chan<- prometheus.Metric) {
	name := c.b.name
	for _, s := range c.b.Status() {
		ch <- prometheus.MustNewConstMetric(descPicks, prometheus.CounterValue, float64(s.Picks), name, s.ID)
		ch <- prometheus.MustNewConstMetric(descFailures, prometheus.CounterValue, float64(s.Failures), name, s.ID)
		ch <- prometheus.MustNewConstMetric(descInFlight, prometheus.GaugeValue, float64(s.InFlight), name, s.ID)
		ch <- prometheus.MustNewConstMetric(descEjections, prometheus.CounterValue, float64(s.EjectionsTotal), name, s.ID)
		ch <- prometheus.MustNewConstMetric(descHealthy, prometheus.GaugeValue, boolFloat(s.Healthy), name, s.ID)
		ch <- prometheus.MustNewConstMetric(descEjected, prometheus.GaugeValue, boolFloat(s.Ejected), name, s.ID)
	}
	ch <- prometheus.MustNewConstMetric(descPanic, prometheus.GaugeValue, boolFloat(c.b.Panicking()), name)
}

func boolFloat(v bool) float64 {
	if v {
		return 1
	}
	return 0
}
