package writeback

import (
	"math"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hourglass-io/hourglass/internal/promstats"
)

func float64bits(f float64) uint64     { return math.Float64bits(f) }
func float64frombits(u uint64) float64 { return math.Float64frombits(u) }

// Stats is a snapshot of an engine's state and counters.
type Stats struct {
	// The cache's totals.
	CachePoints, CacheCells, CacheBytes int64
	// SealedGenerations waiting to be flushed (more than zero between
	// flushes means the store or an archive failed).
	SealedGenerations int
	// OldestUnflushed is the age of the oldest write not yet flushed.
	OldestUnflushed time.Duration
	// PointsWritten and Writes count acknowledged points and batches;
	// Rejected counts invalid batches, BackPressure batches refused by
	// the cache bound.
	PointsWritten, Writes, Rejected, BackPressure int64
	// Flushes, FlushErrors and BudgetOverruns count flush attempts.
	Flushes, FlushErrors, BudgetOverruns int64
	// CellsFlushed counts cells written to the store.
	CellsFlushed int64
	// QuarantinedCells counts the cells the store refused for good
	// during this engine's flushes; Quarantine is the number the cache's
	// quarantine holds now (see Engine.Quarantined).
	QuarantinedCells int64
	Quarantine       int
	// LastFlushDuration and LastFlushCells describe the last flush.
	LastFlushDuration time.Duration
	LastFlushCells    int64
	// StoreSpeed is the measured store write speed in cells/s.
	StoreSpeed float64
	// PartialAnswers counts queries (Query, Cells and their Detailed
	// forms) answered without the cells of some peers (Options.Peers).
	PartialAnswers int64
	// AdmitWaits counts the writes Admit held back while a flush ran
	// (Options.FlushWriters; including those whose context ended while
	// they waited), AdmitWait their total time waiting.
	AdmitWaits int64
	AdmitWait  time.Duration
	// AdmitRefused counts the writes Admit refused at once
	// (tsstore.ErrBackPressure) because Options.FlushWaiters writes
	// waited already.
	AdmitRefused int64
	// AdmitStalls counts the times flush work made no progress for
	// Options.FlushStall, which lifted the bound until it did.
	AdmitStalls int64
	// Flushing reports flush work running: a flush, or an archive step
	// still running after its flush.
	Flushing bool
}

// Stats returns the engine's current figures.
func (e *Engine) Stats() Stats {
	cs := e.cache.Stats()
	s := Stats{
		CachePoints: cs.Points, CacheCells: cs.Cells, CacheBytes: cs.Bytes,
		SealedGenerations: cs.Sealed,
		PointsWritten:     e.stats.points.Load(), Writes: e.stats.writes.Load(),
		Rejected: e.stats.rejected.Load(), BackPressure: e.stats.backPressure.Load(),
		Flushes: e.stats.flushes.Load(), FlushErrors: e.stats.flushErrors.Load(),
		BudgetOverruns: e.stats.overruns.Load(), CellsFlushed: e.stats.cellsFlushed.Load(),
		LastFlushDuration: time.Duration(e.stats.lastFlushNanos.Load()),
		LastFlushCells:    e.stats.lastFlushCells.Load(),
		StoreSpeed:        e.speed(),
		PartialAnswers:    e.stats.partial.Load(),
		QuarantinedCells:  e.stats.quarantined.Load(),
		AdmitWaits:        e.stats.admitWaits.Load(),
		AdmitRefused:      e.stats.admitRefused.Load(),
		AdmitStalls:       e.stats.admitStalls.Load(),
		AdmitWait:         time.Duration(e.stats.admitWaitNanos.Load()),
		Flushing:          e.admission.flushing(),
	}
	if e.quarantine != nil {
		s.Quarantine = e.quarantine.QuarantinedCount()
	}
	if !cs.OldestWrite.IsZero() {
		s.OldestUnflushed = e.opts.Now().Sub(cs.OldestWrite)
	}
	return s
}

// Collector returns a Prometheus collector of the engine's Stats, with
// metric names prefixed hourglass_writeback_. Register it yourself.
func (e *Engine) Collector() prometheus.Collector {
	return &promstats.Collector[Stats]{Snapshot: e.Stats, Metrics: metrics}
}

var metrics = []promstats.Metric[Stats]{
	gauge("cache_points", "Raw points held by the cache.", func(s *Stats) float64 { return float64(s.CachePoints) }),
	gauge("cache_cells", "Cells held by the cache.", func(s *Stats) float64 { return float64(s.CacheCells) }),
	gauge("cache_bytes", "Estimated bytes held by the cache.", func(s *Stats) float64 { return float64(s.CacheBytes) }),
	gauge("sealed_generations", "Sealed generations waiting to be flushed.", func(s *Stats) float64 { return float64(s.SealedGenerations) }),
	gauge("oldest_unflushed_seconds", "Age of the oldest unflushed write.", func(s *Stats) float64 { return s.OldestUnflushed.Seconds() }),
	gauge("last_flush_seconds", "Duration of the last flush.", func(s *Stats) float64 { return s.LastFlushDuration.Seconds() }),
	gauge("last_flush_cells", "Cells written by the last flush.", func(s *Stats) float64 { return float64(s.LastFlushCells) }),
	gauge("store_speed_cells_per_second", "Measured store write speed.", func(s *Stats) float64 { return s.StoreSpeed }),
	counter("points_written_total", "Acknowledged points.", func(s *Stats) float64 { return float64(s.PointsWritten) }),
	counter("writes_total", "Acknowledged write batches.", func(s *Stats) float64 { return float64(s.Writes) }),
	counter("writes_rejected_total", "Write batches rejected as invalid.", func(s *Stats) float64 { return float64(s.Rejected) }),
	counter("writes_back_pressure_total", "Write batches refused because the cache was full.", func(s *Stats) float64 { return float64(s.BackPressure) }),
	counter("flushes_total", "Flush attempts.", func(s *Stats) float64 { return float64(s.Flushes) }),
	counter("flush_errors_total", "Flush attempts that failed.", func(s *Stats) float64 { return float64(s.FlushErrors) }),
	counter("flush_budget_overruns_total", "Flushes stopped at their budget.", func(s *Stats) float64 { return float64(s.BudgetOverruns) }),
	counter("cells_flushed_total", "Cells written to the store.", func(s *Stats) float64 { return float64(s.CellsFlushed) }),
	counter("quarantined_cells_total", "Cells the store refused for good during flushes, quarantined by the cache.", func(s *Stats) float64 { return float64(s.QuarantinedCells) }),
	gauge("quarantined_cells", "Cells in the cache's quarantine now (refused by the store, waiting for a resubmit).", func(s *Stats) float64 { return float64(s.Quarantine) }),
	counter("partial_answers_total", "Queries answered without the cells of some peers.", func(s *Stats) float64 { return float64(s.PartialAnswers) }),
	gauge("flushing", "1 while flush work runs (a flush, or an archive step still running after its flush), else 0.", func(s *Stats) float64 {
		if s.Flushing {
			return 1
		}
		return 0
	}),
	counter("admit_waits_total", "Writes held back by Admit while a flush ran (Options.FlushWriters).", func(s *Stats) float64 { return float64(s.AdmitWaits) }),
	counter("admit_wait_seconds_total", "Time writes waited in Admit while a flush ran.", func(s *Stats) float64 { return s.AdmitWait.Seconds() }),
	counter("admit_stalls_total", "Times flush work made no progress for Options.FlushStall, which stopped Admit holding writes back until it did.", func(s *Stats) float64 { return float64(s.AdmitStalls) }),
	counter("admit_refused_total", "Writes Admit refused at once while a flush ran, because Options.FlushWaiters writes waited already.", func(s *Stats) float64 { return float64(s.AdmitRefused) }),
}

func gauge(name, help string, v func(*Stats) float64) promstats.Metric[Stats] {
	return promstats.Gauge("hourglass_writeback_"+name, help, v)
}

func counter(name, help string, v func(*Stats) float64) promstats.Metric[Stats] {
	return promstats.Counter("hourglass_writeback_"+name, help, v)
}
