package replicate

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// ReplicaStats is the state of one replica, for inspection, tests and
// metrics.
type ReplicaStats struct {
	Name    string
	Primary bool
	Healthy bool // by the last health check
	// Stale reports dropped hints awaiting a re-sync.
	Stale bool
	// Applied is the newest write seq such that the replica applied every
	// write up to it.
	Applied uint64
	// HintRecords and HintBytes count the pending hints (writes the
	// replica has not applied yet); HintFileBytes is the size of its hint
	// files on disk.
	HintRecords   int
	HintBytes     int64
	HintFileBytes int64
	// OldestHint is the age of the oldest pending hint (0 when none).
	OldestHint time.Duration
	// Failing reports that the last write to the replica failed, with
	// LastError.
	Failing   bool
	LastError string
	// Conflicts counts cells the replica refused for good (conflict or
	// invalid) during replays, skipped and logged.
	Conflicts uint64
	// Resyncs and ArchiveResyncs count the re-syncs completed from another
	// replica and from the archive.
	Resyncs, ArchiveResyncs uint64
	// Epoch is the replica's fence epoch (0 when it cannot be fenced).
	Epoch uint64
}

// Stats is a snapshot of a Store's state.
type Stats struct {
	Epoch      uint64
	Primary    string
	LastAcked  uint64
	Promotions uint64
	// Fenced reports that a newer epoch fenced this Store: it refuses
	// writes.
	Fenced   bool
	Replicas []ReplicaStats
}

// Stats returns a snapshot of the Store's state.
func (s *Store) Stats() Stats {
	s.order.Lock()
	primary := s.primary
	s.order.Unlock()
	st := Stats{Epoch: s.epoch.Load(), Primary: primary.name, LastAcked: s.lastAcked.Load(),
		Promotions: s.promotions.Load(), Fenced: s.fenced.Load() != nil}
	now := time.Now().UnixNano()
	for _, l := range s.links {
		l.mu.Lock()
		r := ReplicaStats{Name: l.name, Primary: l == primary, Healthy: l.healthy, Stale: l.stale != nil,
			Applied: l.appliedLocked(), HintRecords: len(l.pend), HintBytes: l.pendBytes,
			Failing: l.failing, Conflicts: l.conflicts, Resyncs: l.resyncs, ArchiveResyncs: l.archiveResyncs}
		if l.log != nil {
			r.HintFileBytes = l.log.bytes()
		}
		if len(l.pend) > 0 {
			oldest := l.pend[0].at
			for _, p := range l.pend[1:min(len(l.pend), 64)] {
				oldest = min(oldest, p.at)
			}
			r.OldestHint = time.Duration(now - oldest)
		}
		if l.failing && l.lastErr != nil {
			r.LastError = l.lastErr.Error()
		}
		l.mu.Unlock()
		if l.fencer != nil {
			r.Epoch = l.fencer.Epoch()
		}
		st.Replicas = append(st.Replicas, r)
	}
	return st
}

// Collector returns a Prometheus collector of the Store's state, opt-in:
// register it yourself. Metrics (prefix hourglass_replicate_): epoch,
// promotions_total, fenced, and per replica (label replica): primary,
// healthy, stale, hint_bytes, hint_records, hint_oldest_age_seconds,
// applied_seq, conflicts_total, resyncs_total (label source: replica or
// archive).
func (s *Store) Collector() prometheus.Collector { return (*collector)(s) }

type collector Store

var (
	descEpoch      = prometheus.NewDesc("hourglass_replicate_epoch", "Epoch of the store (1 plus one per promotion).", nil, nil)
	descPromotions = prometheus.NewDesc("hourglass_replicate_promotions_total", "Promotions of a standby by this store.", nil, nil)
	descFenced     = prometheus.NewDesc("hourglass_replicate_fenced", "1 when a newer epoch fenced this store.", nil, nil)
	descPrimary    = prometheus.NewDesc("hourglass_replicate_primary", "1 for the current primary.", []string{"replica"}, nil)
	descHealthy    = prometheus.NewDesc("hourglass_replicate_healthy", "1 when the replica passed its health checks.", []string{"replica"}, nil)
	descStale      = prometheus.NewDesc("hourglass_replicate_stale", "1 when the replica's hints were dropped and it awaits a re-sync.", []string{"replica"}, nil)
	descHintBytes  = prometheus.NewDesc("hourglass_replicate_hint_bytes", "Bytes of pending hints of the replica.", []string{"replica"}, nil)
	descHintRecs   = prometheus.NewDesc("hourglass_replicate_hint_records", "Pending hinted writes of the replica.", []string{"replica"}, nil)
	descHintAge    = prometheus.NewDesc("hourglass_replicate_hint_oldest_age_seconds", "Age of the oldest pending hint of the replica.", []string{"replica"}, nil)
	descApplied    = prometheus.NewDesc("hourglass_replicate_applied_seq", "Newest write seq the replica applied with every earlier one.", []string{"replica"}, nil)
	descConflicts  = prometheus.NewDesc("hourglass_replicate_conflicts_total", "Cells the replica refused for good during replays.", []string{"replica"}, nil)
	descResyncs    = prometheus.NewDesc("hourglass_replicate_resyncs_total", "Re-syncs of the stale replica completed, by source (replica or archive).", []string{"replica", "source"}, nil)
)

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descEpoch, descPromotions, descFenced, descPrimary, descHealthy, descStale, descHintBytes, descHintRecs, descHintAge, descApplied, descConflicts, descResyncs} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	st := (*Store)(c).Stats()
	b := func(v bool) float64 {
		if v {
			return 1
		}
		return 0
	}
	ch <- prometheus.MustNewConstMetric(descEpoch, prometheus.GaugeValue, float64(st.Epoch))
	ch <- prometheus.MustNewConstMetric(descPromotions, prometheus.CounterValue, float64(st.Promotions))
	ch <- prometheus.MustNewConstMetric(descFenced, prometheus.GaugeValue, b(st.Fenced))
	for _, r := range st.Replicas {
		ch <- prometheus.MustNewConstMetric(descPrimary, prometheus.GaugeValue, b(r.Primary), r.Name)
		ch <- prometheus.MustNewConstMetric(descHealthy, prometheus.GaugeValue, b(r.Healthy), r.Name)
		ch <- prometheus.MustNewConstMetric(descStale, prometheus.GaugeValue, b(r.Stale), r.Name)
		ch <- prometheus.MustNewConstMetric(descHintBytes, prometheus.GaugeValue, float64(r.HintBytes), r.Name)
		ch <- prometheus.MustNewConstMetric(descHintRecs, prometheus.GaugeValue, float64(r.HintRecords), r.Name)
		ch <- prometheus.MustNewConstMetric(descHintAge, prometheus.GaugeValue, r.OldestHint.Seconds(), r.Name)
		ch <- prometheus.MustNewConstMetric(descApplied, prometheus.GaugeValue, float64(r.Applied), r.Name)
		ch <- prometheus.MustNewConstMetric(descConflicts, prometheus.CounterValue, float64(r.Conflicts), r.Name)
		ch <- prometheus.MustNewConstMetric(descResyncs, prometheus.CounterValue, float64(r.Resyncs), r.Name, "replica")
		ch <- prometheus.MustNewConstMetric(descResyncs, prometheus.CounterValue, float64(r.ArchiveResyncs), r.Name, "archive")
	}
}
