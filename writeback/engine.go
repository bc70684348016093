package writeback

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/tsstore/archive"
)

// Defaults of Options (DESIGN.md, "Defaults").
const (
	// DefaultFlushInterval is the brief's schedule.
	DefaultFlushInterval = 45 * time.Minute
	// DefaultFlushJitter spreads many servers' flushes: ±5 %.
	DefaultFlushJitter = 0.05
	// DefaultFlushBudget: interval + budget = the one-hour freshness bound.
	DefaultFlushBudget = 15 * time.Minute
	// DefaultMaxCacheBytes bounds the cache; writes beyond it fail with
	// tsstore.ErrBackPressure.
	DefaultMaxCacheBytes = 1 << 30
	// DefaultMaxLate is how far in the past a point may be. It stays below
	// promtsdb's out-of-order window (7 days) by more than a flush cycle.
	DefaultMaxLate = 6 * 24 * time.Hour
	// DefaultMaxFuture is how far in the future a point may be (clock skew).
	DefaultMaxFuture = time.Hour
	// DefaultSegmentPoints is the most raw points in one archive segment.
	DefaultSegmentPoints = 1_000_000
	// DefaultFlushStall is how long flush work may make no progress
	// before Admit stops holding writes back for it (Options.FlushStall).
	DefaultFlushStall = 10 * time.Second
	// DefaultFlushChunk is how many cells go to the store in one Write.
	DefaultFlushChunk = 10_000
	// DefaultRetryBackoff is the first wait after a failed flush; it
	// doubles up to DefaultMaxRetryBackoff.
	DefaultRetryBackoff    = time.Second
	DefaultMaxRetryBackoff = time.Minute
)

// Options configures an Engine. A nil *Options means the defaults; every
// zero field means its default.
type Options struct {
	// Processor turns raw points into the points aggregated into cells;
	// nil means tsstore.Identity.
	Processor tsstore.Processor
	// Archives receive every flushed generation's raw points (several
	// archives stand for several regions). None: nothing is archived.
	Archives []archive.Archive
	// Source names this engine: it is the writer id of its cells in the
	// store (tsstore.Cell.Writer; see Engine.WriterID) and the source of
	// its archive segments, so that a flush's cells and raw points name
	// the same writer. "" means the cache's own id (Cache.WriterID), made
	// once per data directory or Redis prefix and persisted. It must pass
	// ValidateWriterID and archive.SegmentID's check ([a-zA-Z0-9_.-]). Set
	// it only to keep an identity across a new cache storage, and never to
	// the same value in two engines at once. Generations the cache holds
	// from before it had a writer id keep the legacy writer "" and are
	// archived under the source of that time (this field when set, else
	// the host name, as before).
	Source string
	// FlushInterval is the period of the flush timer; a negative value
	// disables the timer (flushes then happen on size, Flush and Close).
	FlushInterval time.Duration
	// FlushJitter is the relative jitter of the interval, in [0, 0.5].
	FlushJitter float64
	// FlushBudget is how long one flush may take; a flush that would
	// overrun it stops after the cells it could write (oldest first),
	// reports the overrun and continues right away in a new flush.
	FlushBudget time.Duration
	// MaxCacheBytes bounds the cache (CacheStats.Bytes).
	MaxCacheBytes int64
	// FlushAtBytes starts a flush when the cache grows past it; 0 means
	// half of MaxCacheBytes.
	FlushAtBytes int64
	// MaxLate and MaxFuture bound a point's timestamp around the time of
	// the write; points outside are rejected with tsstore.ErrInvalid.
	MaxLate, MaxFuture time.Duration
	// SegmentPoints is the most raw points per archive segment. A
	// segment's name holds its index in the generation's log, so keep it
	// while generations wait to be flushed (after a crash or an outage):
	// a generation replayed with another value is cut into other
	// segments, and a name appended before with other points is
	// tsstore.ErrConflict (or, with other time ranges, its points are
	// archived twice).
	SegmentPoints int
	// FlushChunk is the number of cells per store write.
	FlushChunk int
	// DrainRate limits the cells per second written to the store while a
	// backlog drains after an outage (more than one sealed generation);
	// 0 means no limit.
	DrainRate float64
	// RetryBackoff is the first wait after a failed timed flush.
	RetryBackoff time.Duration
	// Durability is the level of Write; DurabilityDefault leaves it to the
	// cache's configuration.
	Durability Durability
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives flush reports and errors; nil means slog.Default().
	Logger *slog.Logger
	// OnFlush, when set, is called after every flush attempt.
	OnFlush func(FlushReport)
	// Peers, when set, gives queries the cells other live writers hold
	// in their caches (see Peers); nil means this engine's cache and the
	// store only.
	Peers Peers
	// FlushWriters bounds the writes Admit lets run at once while flush
	// work runs (a flush, or an archive step still running after its
	// flush), so that under full ingest the flush gets more of the CPU and
	// ends sooner: 0 means half of GOMAXPROCS at New (at least 1), a
	// negative value means no bound. A write waiting for its durability
	// (an fsync, a Redis round trip) holds its place, so with
	// DurabilitySynced and small batches raise it; a flush waiting on a
	// slow store or archive keeps the bound too (not while it paces a
	// drain: see DrainRate; not once it makes no progress: see
	// FlushStall).
	FlushWriters int
	// FlushWaiters caps the writes that may wait in Admit while flush
	// work runs, each holding what its caller read for it (httpapi: a
	// request's body, up to its MaxBody): one more fails at once with
	// tsstore.ErrBackPressure, which httpapi answers with 503 and
	// Retry-After. 0 means 64 per GOMAXPROCS at New; a negative value
	// means no cap. With no bound (FlushWriters < 0) nothing waits.
	FlushWaiters int
	// FlushStall lifts the bound of FlushWriters while flush work makes
	// no progress (no chunk of cells written to the store, no segment
	// appended to an archive) for this long, until it progresses again:
	// a flush waiting on a store or an archive that hangs needs no CPU,
	// and ingest keeps its full rate meanwhile. 0 means
	// DefaultFlushStall (10 s); a negative value means never.
	FlushStall time.Duration
}

// FlushReport describes one flush.
type FlushReport struct {
	Start    time.Time
	Duration time.Duration
	// Committed lists the generations written, archived and dropped.
	Committed []uint64
	// Cells is the number of cells written to the store, Points the raw
	// points archived, Segments the archive segments appended (per
	// archive).
	Cells, Points int64
	Segments      int
	// Quarantined is the number of cells the store refused for good
	// (see Engine.Quarantined); they were not written, and did not stop
	// the flush.
	Quarantined int64
	// Overrun reports that the flush stopped at its budget with
	// RemainingCells still to write.
	Overrun        bool
	RemainingCells int64
	// Err is the flush's error, if any.
	Err error
}

// Engine is the write-back engine: Write acknowledges once points are in
// the cache, a background loop flushes the cache to the store and the
// archives, and Query merges cache and store exactly. Safe for concurrent
// use. Create one with New; Close stops it.
type Engine struct {
	cache    Cache
	store    tsstore.Store
	opts     Options
	log      *slog.Logger
	identity bool
	width    time.Duration
	wms      int64
	// writer and since give each generation its store identity (see
	// writerOf) and archive source; generations before since are archived
	// under legacySource.
	writer       string
	since        uint64
	legacySource string
	// quarantine is the cache's QuarantineCache capability, nil without.
	quarantine QuarantineCache
	flushMu    sync.Mutex // serialises flushes and Resubmit; guards progress
	progress   map[uint64]*genProgress

	kick chan struct{}
	stop chan struct{}
	wg   sync.WaitGroup
	// archCtx is the context of the archive steps, which may outlive a
	// flush; Close cancels it and waits for them (archWG).
	archCtx    context.Context
	archCancel context.CancelFunc
	archWG     sync.WaitGroup
	closed     atomic.Bool

	// admission bounds the writes Admit lets run while flush work runs.
	admission admission

	stats engineStats
}

// genProgress remembers how far a sealed generation's flush got in this
// process, so that a flush split by its budget or an error continues
// where it stopped. After a restart everything is redone (idempotently).
type genProgress struct {
	cellsDone    int
	archivesDone map[int]bool
	// segmentsDone holds, by archive, the segments (by shard) appended
	// by a pass that failed: the next pass skips them.
	segmentsDone map[int]map[int]bool
	// archiving is the generation's archive step, running or ended, until
	// the commit (or its failure).
	archiving *archiving
}

type engineStats struct {
	points, writes, rejected, backPressure       atomic.Int64
	partial                                      atomic.Int64
	flushes, flushErrors, overruns, cellsFlushed atomic.Int64
	quarantined                                  atomic.Int64
	lastFlushNanos, lastFlushCells               atomic.Int64
	// admitWaits counts the Admit calls that waited, admitWaitNanos
	// their time waiting, admitRefused those refused for too many
	// waiting.
	admitWaits, admitWaitNanos, admitRefused atomic.Int64
	// admitStalls counts the stalls of flush work that lifted the bound.
	admitStalls atomic.Int64
	// speed is the measured store write speed in cells/s (float64 bits).
	speed atomic.Uint64
}

// New returns an engine over cache and store and starts its flush loop.
// The engine does not own cache, store or archives: close them after
// the engine.
func New(cache Cache, store tsstore.Store, opts *Options) (*Engine, error) {
	e := &Engine{cache: cache, store: store, kick: make(chan struct{}, 1), stop: make(chan struct{}), progress: map[uint64]*genProgress{}}
	if opts != nil {
		e.opts = *opts
	}
	o := &e.opts
	if cache == nil || store == nil {
		return nil, tsstore.Errorf(tsstore.ErrInvalid, "writeback: New needs a cache and a store")
	}
	if o.Processor == nil {
		o.Processor = tsstore.Identity{}
	}
	_, e.identity = o.Processor.(tsstore.Identity)
	e.writer, e.since = cache.WriterID()
	e.legacySource = o.Source
	if o.Source != "" {
		e.writer = o.Source
	} else {
		h, _ := os.Hostname()
		e.legacySource = sanitizeSource(h)
	}
	if err := ValidateWriterID(e.writer); err != nil {
		return nil, fmt.Errorf("writeback: the writer id (Options.Source or the cache's): %w", err)
	}
	if err := (archive.SegmentID{Source: e.writer, MaxTime: 0}).Validate(); err != nil {
		return nil, fmt.Errorf("writeback: the writer id (Options.Source or the cache's) as an archive source: %w", err)
	}
	o.Source = e.writer
	if o.FlushInterval == 0 {
		o.FlushInterval = DefaultFlushInterval
	}
	if o.FlushJitter == 0 {
		o.FlushJitter = DefaultFlushJitter
	}
	if o.FlushJitter < 0 || o.FlushJitter > 0.5 {
		return nil, tsstore.Errorf(tsstore.ErrInvalid, "writeback: Options.FlushJitter %v is outside [0, 0.5]", o.FlushJitter)
	}
	if o.FlushBudget <= 0 {
		o.FlushBudget = DefaultFlushBudget
	}
	if o.MaxCacheBytes <= 0 {
		o.MaxCacheBytes = DefaultMaxCacheBytes
	}
	if o.FlushAtBytes <= 0 {
		o.FlushAtBytes = o.MaxCacheBytes / 2
	}
	if o.MaxLate <= 0 {
		o.MaxLate = DefaultMaxLate
	}
	if o.MaxFuture <= 0 {
		o.MaxFuture = DefaultMaxFuture
	}
	if o.SegmentPoints <= 0 {
		o.SegmentPoints = DefaultSegmentPoints
	}
	if o.FlushChunk <= 0 {
		o.FlushChunk = DefaultFlushChunk
	}
	if o.RetryBackoff <= 0 {
		o.RetryBackoff = DefaultRetryBackoff
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	e.admission.limit = flushWriters(o.FlushWriters)
	e.admission.maxWaiting = flushWaiters(o.FlushWaiters)
	e.admission.stall = flushStall(o.FlushStall)
	e.admission.now = o.Now
	e.log = o.Logger
	if e.log == nil {
		e.log = slog.Default()
	}
	e.admission.stalled = func() {
		e.stats.admitStalls.Add(1)
		// Not under the admission's lock.
		go e.log.Warn("writeback: flush work made no progress (a store or an archive that hangs?): writes are not held back until it does",
			"stall", e.admission.stall)
	}
	e.quarantine, _ = cache.(QuarantineCache)
	e.width = store.CellWidth()
	e.wms = e.width.Milliseconds()
	if e.wms < 2 {
		return nil, tsstore.Errorf(tsstore.ErrInvalid, "writeback: the store's cell width %v is too small", e.width)
	}
	e.archCtx, e.archCancel = context.WithCancel(context.Background())
	e.wg.Add(1)
	go e.loop()
	return e, nil
}

func sanitizeSource(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 128 && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '.' || r == '-') {
			return r
		}
		return '-'
	}, s)
	if s == "" {
		s = "hourglass"
	}
	if len(s) > 64 {
		s = s[:64]
	}
	return s
}

// CellWidth returns the width of the store's cells, which the engine uses.
func (e *Engine) CellWidth() time.Duration { return e.width }

// Write validates points, processes them and acknowledges once the cache
// holds them at the engine's durability level. A batch with any invalid
// point fails with tsstore.ErrInvalid naming the point, and nothing of it
// is kept. A full cache fails with tsstore.ErrBackPressure. Write does not
// keep the slice points once it returns (it keeps the points' metric names
// and label sets, which must not change): a caller may reuse its memory.
func (e *Engine) Write(ctx context.Context, points []tsstore.Point) error {
	return e.WriteDurable(ctx, points, e.opts.Durability)
}

// WriteDurable is Write with an explicit durability level.
func (e *Engine) WriteDurable(ctx context.Context, points []tsstore.Point, d Durability) error {
	if e.closed.Load() {
		return tsstore.Errorf(tsstore.ErrClosed, "writeback: write")
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(points) == 0 {
		return nil
	}
	if err := e.validate(points, "point"); err != nil {
		e.stats.rejected.Add(1)
		return fmt.Errorf("writeback: write: %w", err)
	}
	processed := points
	if !e.identity {
		var buf *processBuffers
		var err error
		if processed, buf, err = e.process(points); err != nil {
			e.stats.rejected.Add(1)
			return fmt.Errorf("writeback: write: %w", err)
		}
		// The cache does not keep the slice (Cache.Append's contract).
		defer buf.release(processed)
	}
	st := e.cache.Stats()
	if st.Bytes >= e.opts.MaxCacheBytes {
		e.stats.backPressure.Add(1)
		e.signalFlush()
		return tsstore.Errorf(tsstore.ErrBackPressure, "writeback: the cache holds %d bytes, its bound is %d (the store or archive may be down; %d generations wait to be flushed)", st.Bytes, e.opts.MaxCacheBytes, st.Sealed)
	}
	err := e.cache.Append(ctx, &Batch{Raw: points, Processed: processed, CellWidth: e.width, Durability: d})
	if err != nil {
		return fmt.Errorf("writeback: write: %w", err)
	}
	e.stats.writes.Add(1)
	e.stats.points.Add(int64(len(points)))
	if st.Bytes >= e.opts.FlushAtBytes {
		e.signalFlush()
	}
	return nil
}

// processBuffers are process's buffers, pooled: the points a processor
// makes, a slice as large as a batch, and where each raw point's end
// among them. Without them, every write through a processor allocates a
// copy of its batch, even when the processor passes every point through.
type processBuffers struct {
	points []tsstore.Point
	ends   []int
}

var processPool = sync.Pool{New: func() any { return new(processBuffers) }}

// maxPooledPoints caps a pooled buffer of processed points (3.5 MiB): one
// huge batch does not keep its memory for the ones after it.
const maxPooledPoints = 1 << 16

// release pools b (nil: nothing to do) with processed, the slice made in
// b.points, once nothing refers to it.
func (b *processBuffers) release(processed []tsstore.Point) {
	if b == nil {
		return
	}
	// Cleared, it keeps no label set or metric name alive while pooled.
	clear(processed)
	b.points = processed[:0]
	if cap(processed) > maxPooledPoints || cap(b.ends) > maxPooledPoints {
		b.points, b.ends = nil, nil
	}
	processPool.Put(b)
}

// process returns what the processor makes of points, validated. When it
// made every point into itself, it returns points itself, so that a cache
// logs them once, and no buffer. Otherwise the slice it returns is made
// in the returned buffer: release it with the slice once the batch is
// cached.
func (e *Engine) process(points []tsstore.Point) ([]tsstore.Point, *processBuffers, error) {
	buf := processPool.Get().(*processBuffers)
	processed := slices.Grow(buf.points[:0], len(points))        // a point makes one, as a rule
	ends := slices.Grow(buf.ends[:0], len(points))[:len(points)] // the end in processed of what each point made
	buf.ends = ends
	// failed names the processed point k that is not valid.
	failed := func(k int, err error) error {
		i, _ := slices.BinarySearch(ends, k+1)
		start := 0
		if i > 0 {
			start = ends[i-1]
		}
		return fmt.Errorf("point %d: processor %s made point %d: %w", i, e.opts.Processor.Version(), k-start, err)
	}
	// fail pools the buffer without the points: a processor that failed
	// may have written past the slice it returned.
	fail := func(err error) ([]tsstore.Point, *processBuffers, error) {
		buf.points = nil
		processPool.Put(buf)
		return nil, nil, err
	}
	for i := range points {
		out, err := e.opts.Processor.Process(processed, points[i])
		if err != nil {
			// A point made before is reported first, as it comes first.
			// (out may be nil: the points before are in processed.)
			if i > 0 {
				if k, verr := e.check(processed[:ends[i-1]]); verr != nil {
					return fail(failed(k, verr))
				}
			}
			return fail(fmt.Errorf("point %d: processor %s: %w", i, e.opts.Processor.Version(), err))
		}
		processed = out
		ends[i] = len(processed)
	}
	if same(points, processed) {
		// Valid: they are the points, which Write validated.
		buf.release(processed)
		return points, nil, nil
	}
	if k, err := e.check(processed); err != nil {
		err = failed(k, err) // before the release: it reads ends
		buf.release(processed)
		return nil, nil, err
	}
	return processed, buf, nil
}

// same reports whether processed are points, point by point, sharing
// their label sets.
func same(points, processed []tsstore.Point) bool {
	if len(processed) != len(points) {
		return false
	}
	for i := range points {
		a, b := &points[i], &processed[i]
		if a.Metric != b.Metric || a.Timestamp != b.Timestamp || math.Float64bits(a.Value) != math.Float64bits(b.Value) ||
			len(a.Labels) != len(b.Labels) || len(a.Labels) > 0 && &a.Labels[0] != &b.Labels[0] {
			return false
		}
	}
	return true
}

// validate checks points and their time window; what names them in errors.
func (e *Engine) validate(ps []tsstore.Point, what string) error {
	if i, err := e.check(ps); err != nil {
		return fmt.Errorf("%s %d: %w", what, i, err)
	}
	return nil
}

// checkedPool holds check's maps of the label sets it checked, emptied: a
// batch of many series would make one per call.
var checkedPool = sync.Pool{New: func() any { return make(map[*tsstore.Label]int) }}

// maxPooledChecked caps the label sets of a pooled map of check: clearing
// a map does not shrink it.
const maxPooledChecked = 1 << 12

// check checks points and their time window, and returns the index of the
// first bad one with the reason.
func (e *Engine) check(ps []tsstore.Point) (int, error) {
	now := tsstore.Millis(e.opts.Now())
	oldest, newest := now-e.opts.MaxLate.Milliseconds(), now+e.opts.MaxFuture.Milliseconds()
	// A labels slice that many points share (as a parser's interned series
	// are) is validated with its first point's series
	// (Point.ValidateSeries) once per call, and only the metric name of
	// the points after it; every point's scalars are validated
	// (Point.ValidateScalars).
	var checked map[*tsstore.Label]int
	defer func() {
		if checked != nil && len(checked) <= maxPooledChecked {
			clear(checked)
			checkedPool.Put(checked)
		}
	}()
	var last *tsstore.Label
	var lastN int
	for i := range ps {
		p := &ps[i]
		seen := false
		if n := len(p.Labels); n > 0 {
			l := &p.Labels[0]
			if l == last && n == lastN {
				seen = true
			} else if m, ok := checked[l]; ok && m == n {
				seen = true
				last, lastN = l, n
			}
		}
		if seen {
			if err := tsstore.ValidateMetric(p.Metric); err != nil {
				return i, err
			}
		} else {
			if err := p.ValidateSeries(); err != nil {
				return i, err
			}
			if n := len(p.Labels); n > 0 {
				if last != nil {
					// A second label set: from now on, remember them.
					if checked == nil {
						checked = checkedPool.Get().(map[*tsstore.Label]int)
						checked[last] = lastN
					}
					checked[&p.Labels[0]] = n
				}
				last, lastN = &p.Labels[0], n
			}
		}
		if err := p.ValidateScalars(); err != nil {
			return i, err
		}
		if p.Timestamp < oldest {
			return i, tsstore.Errorf(tsstore.ErrInvalid, "%s%s: timestamp %s is more than %v in the past", p.Metric, p.Labels, tsstore.TimeOf(p.Timestamp).Format(time.RFC3339Nano), e.opts.MaxLate)
		}
		if p.Timestamp > newest {
			return i, tsstore.Errorf(tsstore.ErrInvalid, "%s%s: timestamp %s is more than %v in the future", p.Metric, p.Labels, tsstore.TimeOf(p.Timestamp).Format(time.RFC3339Nano), e.opts.MaxFuture)
		}
	}
	return 0, nil
}

func (e *Engine) signalFlush() {
	select {
	case e.kick <- struct{}{}:
	default:
	}
}

// WriterID returns the writer id of the engine's cells and the source of
// its archive segments (Options.Source or the cache's id). Generation g's cells are stored with Writer WriterID()
// for g below the cell width in ms and "WriterID()/<g / width>" after.
func (e *Engine) WriterID() string { return e.writer }

// identify sets the store identity (Writer, Seq) of a cell of generation
// gen, which follows from the generation alone. Flush, Query and Cells all
// name cells through it.
func (e *Engine) identify(c *tsstore.Cell, gen uint64) {
	c.Writer, c.Seq = writerOf(e.writer, e.since, e.wms, gen)
}

// CellsDetailed is Cells, and names the peers whose cells the answer
// lacks (none: the answer is exact).
func (e *Engine) CellsDetailed(ctx context.Context, sel tsstore.Selector) ([]tsstore.Cell, []string, error) {
	if e.closed.Load() {
		return nil, nil, tsstore.Errorf(tsstore.ErrClosed, "writeback: cells")
	}
	if err := sel.Validate(); err != nil {
		return nil, nil, fmt.Errorf("writeback: cells: %w", err)
	}
	cached, peer, missing, err := e.unflushedCells(ctx, sel)
	if err != nil {
		return nil, nil, fmt.Errorf("writeback: cells: %w", err)
	}
	stored, err := e.store.Cells(ctx, sel)
	if err != nil {
		return nil, nil, fmt.Errorf("writeback: cells from the store: %w", err)
	}
	out := make([]tsstore.Cell, 0, len(cached)+len(peer)+len(stored))
	seen := make(map[tsstore.CellID]struct{}, len(cached))
	for i := range cached {
		seen[cached[i].ID()] = struct{}{}
		out = append(out, cached[i])
	}
	for i := range stored {
		if _, dup := seen[stored[i].ID()]; !dup {
			out = append(out, stored[i])
			markStored(seen, peer, &stored[i])
		}
	}
	out = addPeerCells(out, seen, peer)
	e.notePartial("cells", missing)
	return out, missing, nil
}

// QueryDetailed is Query, and names the peers whose cells the answer
// lacks (none: the answer is exact).
func (e *Engine) QueryDetailed(ctx context.Context, q Query) (*tsstore.Result, []string, error) {
	if e.closed.Load() {
		return nil, nil, tsstore.Errorf(tsstore.ErrClosed, "writeback: query")
	}
	if err := q.Validate(e.width); err != nil {
		return nil, nil, fmt.Errorf("writeback: query: %w", err)
	}
	sel := q.Selector()
	cached, peer, missing, err := e.unflushedCells(ctx, sel)
	if err != nil {
		return nil, nil, fmt.Errorf("writeback: query: %w", err)
	}
	if len(cached) == 0 && len(peer) == 0 {
		r, err := e.store.Query(ctx, q)
		if err != nil {
			return nil, nil, fmt.Errorf("writeback: query store: %w", err)
		}
		e.notePartial("query", missing)
		return r, missing, nil
	}
	oldest := int64(math.MaxInt64)
	for i := range cached {
		oldest = min(oldest, cached[i].Start)
	}
	for i := range peer {
		oldest = min(oldest, peer[i].Start)
	}
	split := q.BucketStart(oldest)
	b := tsstore.NewResultBuilder(&q)
	if split > q.From {
		old := q
		old.To = split
		r, err := e.store.Query(ctx, old)
		if err != nil {
			return nil, nil, fmt.Errorf("writeback: query store: %w", err)
		}
		for _, s := range r.Series {
			for _, bk := range s.Buckets {
				b.Add(s.Labels, bk.Start, bk.Agg)
			}
		}
	}
	recent := sel
	recent.From = split
	stored, err := e.store.Cells(ctx, recent)
	if err != nil {
		return nil, nil, fmt.Errorf("writeback: query store cells: %w", err)
	}
	// A cell's Seq follows from its generation, sealed or not: a cell of
	// the open generation may have been sealed, stored and committed since
	// the cache was read, and its stored copy must not count again.
	seen := make(map[tsstore.CellID]struct{}, len(cached))
	for i := range cached {
		c := &cached[i]
		seen[c.ID()] = struct{}{}
		b.Add(c.Labels, c.Start, c.Agg)
	}
	for i := range stored {
		c := &stored[i]
		if _, dup := seen[c.ID()]; !dup {
			b.Add(c.Labels, c.Start, c.Agg)
			markStored(seen, peer, c)
		}
	}
	for _, c := range addPeerCells(nil, seen, peer) {
		b.Add(c.Labels, c.Start, c.Agg)
	}
	e.notePartial("query", missing)
	return b.Result(), missing, nil
}

// Query is tsstore.Query, named here for the engine's signature.
type Query = tsstore.Query

// Flush seals the open generation and flushes every sealed generation,
// oldest first: its cells to the store, its raw points to every archive,
// then commits it. It returns the report and the first error; a
// generation that failed stays sealed and is retried by the next flush
// (every step is idempotent).
func (e *Engine) Flush(ctx context.Context) (FlushReport, error) {
	if e.closed.Load() {
		return FlushReport{}, tsstore.Errorf(tsstore.ErrClosed, "writeback: flush")
	}
	return e.flush(ctx)
}

func (e *Engine) flush(ctx context.Context) (rep FlushReport, err error) {
	e.flushMu.Lock()
	defer e.flushMu.Unlock()
	e.admission.start()
	defer e.admission.end()
	rep.Start = e.opts.Now()
	start := time.Now()
	deadline := start.Add(e.opts.FlushBudget)
	defer func() {
		rep.Duration = time.Since(start)
		rep.Err = err
		e.stats.flushes.Add(1)
		e.stats.lastFlushNanos.Store(int64(rep.Duration))
		e.stats.lastFlushCells.Store(rep.Cells)
		if err != nil {
			e.stats.flushErrors.Add(1)
		}
		if rep.Overrun {
			e.stats.overruns.Add(1)
		}
		if e.opts.OnFlush != nil {
			e.opts.OnFlush(rep)
		}
	}()
	// A flush that continues a backlog (sealed generations left by a flush
	// that overran, or by a store outage) first finishes it, and seals the
	// open generation only then: sealing at every continuation would cut
	// the writes into many small generations, each with its own cells to
	// write (a cell per series and minute, however few points it has).
	backlog, err := e.cache.Sealed(ctx)
	if err != nil {
		return rep, fmt.Errorf("writeback: flush: %w", err)
	}
	if len(backlog) > 0 {
		if done, err := e.flushGens(ctx, backlog, deadline, &rep); err != nil || !done {
			return rep, err
		}
	}
	if err := e.seal(ctx); err != nil {
		return rep, err
	}
	gens, err := e.cache.Sealed(ctx)
	if err != nil {
		return rep, fmt.Errorf("writeback: flush: %w", err)
	}
	_, err = e.flushGens(ctx, gens, deadline, &rep)
	return rep, err
}

// flushGens flushes sealed generations gens, oldest first, adding to rep.
// It reports false when one overran the deadline (rep says so, and the
// next flush is signalled).
func (e *Engine) flushGens(ctx context.Context, gens []Generation, deadline time.Time, rep *FlushReport) (bool, error) {
	backlog := len(gens) > 1
	for _, g := range gens {
		done, err := e.flushGen(ctx, g, deadline, backlog, rep)
		if err != nil {
			return false, fmt.Errorf("writeback: flush generation %d: %w", g.Gen, err)
		}
		if !done {
			rep.Overrun = true
			for _, later := range gens {
				if later.Gen > g.Gen {
					rep.RemainingCells += later.Cells
				}
			}
			e.log.Warn("writeback: flush stopped at its budget; continuing in the next flush",
				"budget", e.opts.FlushBudget, "remaining_cells", rep.RemainingCells)
			e.signalFlush()
			return false, nil
		}
		rep.Committed = append(rep.Committed, g.Gen)
	}
	return true, nil
}

// seal seals the open generation.
func (e *Engine) seal(ctx context.Context) error {
	if _, _, err := e.cache.Seal(ctx); err != nil {
		return fmt.Errorf("writeback: seal: %w", err)
	}
	return nil
}

// flushGen writes, archives and commits one generation. It returns false
// when the budget ran out first.
func (e *Engine) flushGen(ctx context.Context, g Generation, deadline time.Time, backlog bool, rep *FlushReport) (done bool, err error) {
	pr := e.progress[g.Gen]
	if pr == nil {
		pr = &genProgress{archivesDone: map[int]bool{}, segmentsDone: map[int]map[int]bool{}}
		e.progress[g.Gen] = pr
	}
	// Oldest data first, so that a split flush keeps the oldest fresh.
	// The order is the same on every call: progress is an index.
	cells, err := e.sealedCellList(ctx, g.Gen)
	if err != nil {
		return false, err
	}
	// The archives are written while the cells go to the store; the
	// commit waits for both. A step left running by an earlier flush is
	// waited for, not started again.
	if pr.archiving == nil {
		pr.archiving = e.startArchiving(g, pr)
	}
	for total := cells.Len(); pr.cellsDone < total; {
		end := min(pr.cellsDone+e.opts.FlushChunk, total)
		if speed := e.speed(); speed > 0 && pr.cellsDone > 0 {
			est := time.Duration(float64(end-pr.cellsDone) / speed * float64(time.Second))
			if time.Now().Add(est).After(deadline) {
				rep.RemainingCells = int64(total - pr.cellsDone)
				return false, nil
			}
		}
		// A chunk of its own: a store may keep the slice (replicate's
		// hints), and a quarantine keeps cells of it.
		chunk := cells.AppendCells(make([]tsstore.Cell, 0, end-pr.cellsDone), pr.cellsDone, end)
		for i := range chunk {
			e.identify(&chunk[i], g.Gen)
		}
		t0 := time.Now()
		refused, err := e.writeIsolating(ctx, g.Gen, chunk)
		if err != nil {
			return false, fmt.Errorf("store: %w", err)
		}
		took := time.Since(t0)
		if len(refused) > 0 {
			if err := e.quarantineCells(ctx, refused); err != nil {
				return false, err
			}
			rep.Quarantined += int64(len(refused))
		} else {
			e.observeSpeed(len(chunk), took)
		}
		pr.cellsDone += len(chunk)
		e.admission.progress()
		written := int64(len(chunk) - len(refused))
		rep.Cells += written
		e.stats.cellsFlushed.Add(written)
		if backlog && e.opts.DrainRate > 0 {
			if pause := time.Duration(float64(len(chunk))/e.opts.DrainRate*float64(time.Second)) - took; pause > 0 {
				if err := e.pace(ctx, pause); err != nil {
					return false, err
				}
			}
		}
	}
	a := pr.archiving
	if ended, err := a.waitBy(ctx, deadline); err != nil {
		return false, err
	} else if !ended {
		return false, nil // the next flush waits for the same step
	}
	if a.err != nil {
		pr.archiving = nil // the next flush starts a new pass
		return false, a.err
	}
	rep.Segments += a.segments
	rep.Points = max(rep.Points, a.points)
	if err := e.cache.Commit(ctx, g.Gen); err != nil {
		return false, fmt.Errorf("commit: %w", err)
	}
	delete(e.progress, g.Gen)
	return true, nil
}

// pace waits d between a drain's store writes, with writes unbounded: a
// flush that waits on purpose leaves the CPU to them (see Admit).
func (e *Engine) pace(ctx context.Context, d time.Duration) error {
	e.admission.end()
	defer e.admission.start()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// sealedCellList returns the cells of the sealed generation gen in flush
// order: the cache's list when it keeps them ordered (SealedCellLister),
// else its SealedCells, sorted (a cache may give them in this order
// already).
func (e *Engine) sealedCellList(ctx context.Context, gen uint64) (CellList, error) {
	if l, ok := e.cache.(SealedCellLister); ok {
		return l.SealedCellList(ctx, gen)
	}
	cells, err := e.cache.SealedCells(ctx, gen)
	if err != nil {
		return nil, err
	}
	if !slices.IsSortedFunc(cells, FlushOrder) {
		slices.SortFunc(cells, FlushOrder)
	}
	return cellSlice(cells), nil
}

// cellSlice is a CellList of cells in memory.
type cellSlice []tsstore.Cell

func (s cellSlice) Len() int { return len(s) }

func (s cellSlice) AppendCells(dst []tsstore.Cell, from, to int) []tsstore.Cell {
	return append(dst, s[from:to]...)
}

// FlushOrder is the order a flush writes cells in, and a
// SealedCellLister lists them in: by start, then by series (metric, then
// labels: tsstore.SeriesLabels.Compare).
func FlushOrder(a, b tsstore.Cell) int {
	if c := cmp.Compare(a.Start, b.Start); c != 0 {
		return c
	}
	return tsstore.SeriesLabels{Metric: a.Metric, Labels: a.Labels}.Compare(tsstore.SeriesLabels{Metric: b.Metric, Labels: b.Labels})
}

func (e *Engine) speed() float64 {
	return float64frombits(e.stats.speed.Load())
}

// observeSpeed updates the exponentially weighted store speed.
func (e *Engine) observeSpeed(n int, took time.Duration) {
	if took <= 0 {
		took = time.Microsecond
	}
	s := float64(n) / took.Seconds()
	if old := e.speed(); old > 0 {
		s = 0.7*old + 0.3*s
	}
	e.stats.speed.Store(float64bits(s))
}

func (e *Engine) loop() {
	defer e.wg.Done()
	backoff := time.Duration(0)
	timer := time.NewTimer(e.nextInterval())
	if e.opts.FlushInterval < 0 {
		timer.Stop()
	}
	defer timer.Stop()
	for {
		select {
		case <-e.stop:
			return
		case <-timer.C:
		case <-e.kick:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*e.opts.FlushBudget)
		go func() {
			select {
			case <-e.stop:
				cancel()
			case <-ctx.Done():
			}
		}()
		rep, err := e.flush(ctx)
		cancel()
		next := e.nextInterval()
		if err != nil {
			backoff = min(max(2*backoff, e.opts.RetryBackoff), DefaultMaxRetryBackoff)
			next = backoff
			if !errors.Is(err, context.Canceled) {
				e.log.Error("writeback: flush failed; the cache keeps the data and retries", "err", err, "retry_in", backoff)
			}
		} else {
			backoff = 0
			if len(rep.Committed) > 0 {
				e.log.Debug("writeback: flushed", "generations", rep.Committed, "cells", rep.Cells, "points", rep.Points, "took", rep.Duration)
			}
		}
		if e.opts.FlushInterval > 0 || err != nil {
			if !timer.Stop() {
				select {
				case <-timer.C:
				default:
				}
			}
			timer.Reset(next)
		}
	}
}

func (e *Engine) nextInterval() time.Duration {
	iv := e.opts.FlushInterval
	if iv <= 0 {
		return time.Hour
	}
	j := e.opts.FlushJitter * (2*rand.Float64() - 1)
	return time.Duration(float64(iv) * (1 + j))
}

// Close stops accepting writes and queries, stops the flush loop, and
// flushes what the cache holds within one flush budget. When that final
// flush fails (the store is down), the data stays in the cache's log for
// the next start and the error says so. Close does not close the cache,
// the store or the archives.
func (e *Engine) Close() error {
	if !e.closed.CompareAndSwap(false, true) {
		return nil
	}
	close(e.stop)
	e.wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), e.opts.FlushBudget)
	defer cancel()
	// Archive steps still running when the final flush ends are stopped;
	// their generations stay sealed for the next start.
	defer e.archWG.Wait()
	defer e.archCancel()
	for {
		rep, err := e.flush(ctx)
		if err != nil {
			return fmt.Errorf("writeback: close: final flush failed, the cache keeps the unflushed data: %w", err)
		}
		if !rep.Overrun {
			return nil
		}
	}
}
