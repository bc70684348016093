package reprocess

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Progress describes how far a job got.
type Progress struct {
	// ID is the version being made.
	ID string
	// Points counts the raw points read, including those of runs before
	// a resume; Total estimates the points of the range (the points of the
	// archive segments overlapping it: an upper bound when the job filters
	// or segments stick out of the range).
	Points, Total int64
	// Position is the timestamp the scan has reached (ms); From and
	// Cutover bound the job's range.
	Position, From, Cutover int64
	// Fraction is the share of the time range done, in [0, 1].
	Fraction float64
	// Rate is the raw points per second of this run.
	Rate float64
	// ETA estimates the time left, from this run's speed over time.
	ETA time.Duration
	// Done is set in the last report of a finished job.
	Done bool
}

// Metrics exposes the progress of jobs to Prometheus: a collector of
// gauges labelled by version id, prefixed hourglass_reprocess_. Create it
// with NewMetrics, register it yourself and set it as Job.Metrics. Safe
// for concurrent use.
type Metrics struct {
	mu   sync.Mutex // guards jobs
	jobs map[string]Progress
}

var _ prometheus.Collector = (*Metrics)(nil)

// NewMetrics returns an empty collector.
func NewMetrics() *Metrics { return &Metrics{jobs: map[string]Progress{}} }

func (m *Metrics) observe(p Progress) {
	m.mu.Lock()
	m.jobs[p.ID] = p
	m.mu.Unlock()
}

var (
	descPoints   = prometheus.NewDesc("hourglass_reprocess_points", "Raw points read by the job.", []string{"version"}, nil)
	descTotal    = prometheus.NewDesc("hourglass_reprocess_points_estimated", "Estimated raw points of the job's range.", []string{"version"}, nil)
	descFraction = prometheus.NewDesc("hourglass_reprocess_fraction", "Share of the job's time range done, 0 to 1.", []string{"version"}, nil)
	descRate     = prometheus.NewDesc("hourglass_reprocess_points_per_second", "Raw points read per second by the job's current run.", []string{"version"}, nil)
	descETA      = prometheus.NewDesc("hourglass_reprocess_eta_seconds", "Estimated time left.", []string{"version"}, nil)
	descDone     = prometheus.NewDesc("hourglass_reprocess_done", "1 once the job has finished.", []string{"version"}, nil)
)

// Describe sends the descriptions of the metrics.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descPoints, descTotal, descFraction, descRate, descETA, descDone} {
		ch <- d
	}
}

// Collect sends the last progress of every job seen.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for id, p := range m.jobs {
		done := 0.0
		if p.Done {
			done = 1
		}
		for _, v := range []struct {
			d *prometheus.Desc
			v float64
		}{{descPoints, float64(p.Points)}, {descTotal, float64(p.Total)}, {descFraction, p.Fraction},
			{descRate, p.Rate}, {descETA, p.ETA.Seconds()}, {descDone, done}} {
			ch <- prometheus.MustNewConstMetric(v.d, prometheus.GaugeValue, v.v, id)
		}
	}
}
