package replicate

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/tsstore/archive"
)

// Defaults of Options.
const (
	// DefaultHintBudget bounds the pending hints of one replica (bytes on
	// disk). A replica over it is marked stale and re-synced.
	DefaultHintBudget = 1 << 30
	// DefaultHintSegmentBytes is the size at which a hint log starts a new
	// segment file.
	DefaultHintSegmentBytes = 16 << 20
	// DefaultHintSyncInterval is the period of background fsyncs of the
	// hint logs (group commit) for writes whose ack did not wait for one.
	DefaultHintSyncInterval = 100 * time.Millisecond
	// DefaultQueueBytes bounds the pending batches a replica's applier
	// keeps in memory; beyond it they are read back from the hint log.
	DefaultQueueBytes = 64 << 20
	// DefaultApplyBytes bounds the batches one apply coalesces into one
	// Write to a replica.
	DefaultApplyBytes = 4 << 20
	// DefaultProbeInterval is the period of the health probes (and of the
	// failover decisions).
	DefaultProbeInterval = time.Second
	// DefaultProbeTimeout bounds one probe.
	DefaultProbeTimeout = time.Second
	// DefaultFall is the number of failed probes in a row that make a
	// replica unhealthy; DefaultRise the passed probes that make it healthy.
	DefaultFall = 3
	DefaultRise = 2
	// DefaultAckTimeout bounds how long a write waits for standbys to
	// apply it at AckPrimaryPlus and AckAll.
	DefaultAckTimeout = 10 * time.Second
	// DefaultRetryBackoff is how long an applier waits after a failed
	// apply before retrying, unless a passed probe wakes it earlier.
	DefaultRetryBackoff = time.Second
	// DefaultResyncWindow is the time range copied per read during a
	// re-sync.
	DefaultResyncWindow = time.Hour
	// DefaultArchiveDelay is how long after the newest write it misses a
	// stale replica waits before it is re-synced from the archive: a
	// write-back flush archives its raw points after it has written their
	// cells, within its budget (writeback's default flush budget).
	DefaultArchiveDelay = 15 * time.Minute
)

// Ack is the level at which a write is acknowledged. The zero value is
// AckPrimary.
type Ack struct {
	standbys int
	mode     int // 0: primary + standbys, 1: quorum, 2: all
}

var (
	// AckPrimary acknowledges a write once the primary stored it; the
	// standbys get it asynchronously (from the hint log, which never drops
	// it silently).
	AckPrimary = Ack{}
	// AckQuorum acknowledges once a majority of the replicas (primary
	// included) applied the write.
	AckQuorum = Ack{mode: 1}
	// AckAll acknowledges once every replica applied the write.
	AckAll = Ack{mode: 2}
)

// AckPrimaryPlus acknowledges once the primary and k standbys (any k)
// applied the write.
func AckPrimaryPlus(k int) Ack { return Ack{standbys: k} }

// required returns the number of standbys (of n) that must apply a write.
func (a Ack) required(n int) int {
	switch a.mode {
	case 1:
		return (n + 1) / 2
	case 2:
		return n
	}
	return a.standbys
}

// String names the level: "primary", "primary+K", "quorum", "all".
func (a Ack) String() string {
	switch a.mode {
	case 1:
		return "quorum"
	case 2:
		return "all"
	}
	if a.standbys == 0 {
		return "primary"
	}
	return fmt.Sprintf("primary+%d", a.standbys)
}

// Options configures a Store. A nil *Options is not valid: Dir is
// required. Every other zero field means its default.
type Options struct {
	// Dir keeps the Store's state (epoch, primary, stale replicas) and the
	// hint logs, one directory per replica. Required. Reopening a Store on
	// the same Dir resumes its hints and its view of the primary.
	Dir string
	// Names names the replicas: the primary first, then the standbys in
	// order ([a-zA-Z0-9_.-], unique). nil means "r0", "r1", …. Names must
	// stay the same across restarts: hint logs are kept by name.
	Names []string
	// Ack is the acknowledgement level of writes; the zero value is
	// AckPrimary.
	Ack Ack

	// HintBudget bounds the pending hints of one replica in bytes; 0 means
	// DefaultHintBudget.
	HintBudget int64
	// HintSegmentBytes is the size of a hint segment file; 0 means
	// DefaultHintSegmentBytes.
	HintSegmentBytes int64
	// HintSyncInterval is the period of background hint fsyncs; 0 means
	// DefaultHintSyncInterval.
	HintSyncInterval time.Duration
	// QueueBytes bounds the pending batches kept in memory per replica; 0
	// means DefaultQueueBytes.
	QueueBytes int64
	// ApplyBytes bounds the batches coalesced into one replica write; 0
	// means DefaultApplyBytes.
	ApplyBytes int64

	// ProbeInterval is the period of health probes and failover decisions;
	// 0 means DefaultProbeInterval; negative means no background monitor
	// (call Check yourself).
	ProbeInterval time.Duration
	// ProbeTimeout bounds one probe; 0 means DefaultProbeTimeout.
	ProbeTimeout time.Duration
	// Fall and Rise are the failed (passed) probes in a row that make a
	// replica unhealthy (healthy); 0 means DefaultFall (DefaultRise).
	Fall, Rise int
	// NoFailover disables automatic promotion of a standby when the
	// primary is unhealthy (FailBack still switches explicitly).
	NoFailover bool

	// AckTimeout bounds the wait for standbys at AckPrimaryPlus, AckQuorum
	// and AckAll; 0 means DefaultAckTimeout.
	AckTimeout time.Duration
	// RetryBackoff is the wait of an applier after a failed apply; 0 means
	// DefaultRetryBackoff.
	RetryBackoff time.Duration
	// ResyncWindow is the time range copied per read during a re-sync; 0
	// means DefaultResyncWindow.
	ResyncWindow time.Duration

	// Archive and Processor, both set, let a stale replica be re-synced
	// from the archive of raw points when no healthy replica has the
	// writes it misses (or always, with ResyncFromArchive): the archived
	// points of its stale time range are processed again by package
	// reprocess, one flush generation at a time, into the cells the
	// write-back flushes wrote (see the package comment). Processor must
	// be the one the live write-back engine runs. Both nil (the default)
	// means re-syncs come only from replicas.
	Archive   archive.Archive
	Processor tsstore.Processor
	// ResyncFromArchive re-syncs stale replicas from the Archive even when
	// a healthy replica could serve (sparing the replicas the reads).
	ResyncFromArchive bool
	// ArchiveDelay is how long after the newest write it misses a stale
	// replica waits for the archive to hold that write's points; 0 means
	// DefaultArchiveDelay, negative means no wait.
	ArchiveDelay time.Duration

	// Logger receives failovers, fencing and re-sync reports; nil means
	// slog.Default().
	Logger *slog.Logger
}

// validate checks the options that have no default.
func (o *Options) validate() error {
	if (o.Archive == nil) != (o.Processor == nil) {
		return tsstore.Errorf(tsstore.ErrInvalid, "replicate: Options.Archive and Options.Processor go together (a re-sync from the archive needs both)")
	}
	if o.ResyncFromArchive && o.Archive == nil {
		return tsstore.Errorf(tsstore.ErrInvalid, "replicate: Options.ResyncFromArchive needs Options.Archive and Options.Processor")
	}
	return nil
}

func (o *Options) withDefaults() {
	set := func(p *int64, d int64) {
		if *p <= 0 {
			*p = d
		}
	}
	setD := func(p *time.Duration, d time.Duration) {
		if *p == 0 {
			*p = d
		}
	}
	set(&o.HintBudget, DefaultHintBudget)
	set(&o.HintSegmentBytes, DefaultHintSegmentBytes)
	set(&o.QueueBytes, DefaultQueueBytes)
	set(&o.ApplyBytes, DefaultApplyBytes)
	setD(&o.HintSyncInterval, DefaultHintSyncInterval)
	setD(&o.ProbeInterval, DefaultProbeInterval)
	setD(&o.ProbeTimeout, DefaultProbeTimeout)
	setD(&o.AckTimeout, DefaultAckTimeout)
	setD(&o.RetryBackoff, DefaultRetryBackoff)
	setD(&o.ResyncWindow, DefaultResyncWindow)
	setD(&o.ArchiveDelay, DefaultArchiveDelay)
	if o.Fall <= 0 {
		o.Fall = DefaultFall
	}
	if o.Rise <= 0 {
		o.Rise = DefaultRise
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}
