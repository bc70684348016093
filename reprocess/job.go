package reprocess

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/tsstore/archive"
	"github.com/hourglass-io/hourglass/writeback"
	"github.com/hourglass-io/hourglass/writeback/localcache"
)

// Defaults of Job.
const (
	// DefaultChunkPoints is how many raw points a job feeds its engine
	// between two flushes (and checkpoints); a flush waits for the next
	// cell boundary of the scan.
	DefaultChunkPoints = 1_000_000
	// DefaultBatchPoints is the size of one engine write.
	DefaultBatchPoints = 8192
	// DefaultProgressInterval is the least time between two progress
	// reports.
	DefaultProgressInterval = time.Second
)

// Job reprocesses the archived raw points of [From, Cutover) with a
// Processor into a new store version. Required: ID, Archive, Processor,
// From and Cutover; every other zero field means its default.
//
// The job reads exactly the archive segments overlapping the range that
// are listed when it first starts (recorded in its lineage; a resumed run
// reads the same ones), merged in time order. Every point of the range
// written before the job starts must have been flushed by the live engine
// and archived by then. Points of the range archived later (late data,
// until the live engine's MaxLate has passed since the cut-over) are added
// by Versions.CatchUp or Switchable.CatchUp; until then reads of their
// time, served by the version, leave them out (never count them twice).
type Job struct {
	// ID names the new version ([a-zA-Z0-9_.-]{1,64}). Running a job
	// whose version is incomplete resumes it from its checkpoint; one that
	// is complete returns its lineage.
	ID string
	// Archive is read; never written.
	Archive archive.Archive
	// Processor is the (fixed) processing logic. Every point it derives
	// must lie in the same cell as the raw point it comes from.
	Processor tsstore.Processor
	// From and Cutover bound the range [From, Cutover) in ms; both must be
	// multiples of the cell width.
	From, Cutover int64
	// Matchers, when set, restrict the job to the raw points whose labels
	// satisfy all of them (say merchant="m42"); a Switchable then serves
	// only those series from the version.
	Matchers []tsstore.Matcher
	// Rate bounds the raw points read per second, so that live ingest
	// keeps its throughput; 0 means no limit.
	Rate float64
	// ChunkPoints is the number of raw points between flushes and
	// checkpoints; 0 means DefaultChunkPoints. It bounds the memory of
	// the job's cache.
	ChunkPoints int
	// BatchPoints is the size of one engine write; 0 means
	// DefaultBatchPoints.
	BatchPoints int
	// Progress, when set, is called with the job's progress at most every
	// ProgressInterval, after every checkpoint and at the end.
	Progress func(Progress)
	// ProgressInterval: 0 means DefaultProgressInterval.
	ProgressInterval time.Duration
	// Metrics, when set, receives the progress for Prometheus.
	Metrics *Metrics
	// Logger receives the job's reports; nil means slog.Default().
	Logger *slog.Logger
}

// checkpoint is how far a job got: every raw point with a timestamp below
// Next has been processed and its cells are in the version's store.
type checkpoint struct {
	Next    int64    `json:"next"`
	Points  int64    `json:"points"`
	Cells   int64    `json:"cells"`
	Metrics []string `json:"metrics"`
}

func (j *Job) validate(width time.Duration) error {
	if err := validID(j.ID); err != nil {
		return err
	}
	if j.Archive == nil || j.Processor == nil {
		return tsstore.Errorf(tsstore.ErrInvalid, "reprocess: job %s needs an Archive and a Processor", j.ID)
	}
	w := width.Milliseconds()
	if j.From < 0 || j.Cutover <= j.From || j.Cutover > tsstore.MaxTimestamp {
		return tsstore.Errorf(tsstore.ErrInvalid, "reprocess: job %s: range [%d, %d) is empty or out of bounds", j.ID, j.From, j.Cutover)
	}
	if j.From%w != 0 || j.Cutover%w != 0 {
		return tsstore.Errorf(tsstore.ErrInvalid, "reprocess: job %s: from %d and cutover %d must be multiples of the cell width %v", j.ID, j.From, j.Cutover, width)
	}
	for i := range j.Matchers {
		if err := j.Matchers[i].Compile(); err != nil {
			return fmt.Errorf("reprocess: job %s: %w", j.ID, err)
		}
	}
	if j.Rate < 0 || math.IsNaN(j.Rate) {
		return tsstore.Errorf(tsstore.ErrInvalid, "reprocess: job %s: rate %v", j.ID, j.Rate)
	}
	return nil
}

func (v *Versions) width() time.Duration {
	if v.opts.Store != nil && v.opts.Store.CellWidth > 0 {
		return v.opts.Store.CellWidth
	}
	return tsstore.DefaultCellWidth
}

// Run runs job into a new version and returns its lineage. It never writes
// to the live store. When the version exists and is complete with the same
// parameters, Run returns its lineage at once; when it is incomplete (the
// job was interrupted), Run resumes from its checkpoint and produces the
// same cells as an uninterrupted run. A version of the same ID made with
// other parameters fails with tsstore.ErrConflict.
func (v *Versions) Run(ctx context.Context, job Job) (*Lineage, error) {
	width := v.width()
	if err := job.validate(width); err != nil {
		return nil, err
	}
	if job.ChunkPoints <= 0 {
		job.ChunkPoints = DefaultChunkPoints
	}
	if job.BatchPoints <= 0 {
		job.BatchPoints = DefaultBatchPoints
	}
	if job.ProgressInterval <= 0 {
		job.ProgressInterval = DefaultProgressInterval
	}
	log := job.Logger
	if log == nil {
		log = slog.Default()
	}
	dir := v.Dir(job.ID)
	lin, err := readLineage(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		segs, err := listSegments(ctx, job.Archive, job.From, job.Cutover)
		if err != nil {
			return nil, err
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, tsstore.Errorf(tsstore.ErrUnavailable, "reprocess: job %s: %w", job.ID, err)
		}
		lin = &Lineage{ID: job.ID, Processor: job.Processor.Version(), From: job.From, Cutover: job.Cutover,
			Filter: formatMatchers(job.Matchers), CellWidth: width.Milliseconds(), Segments: segs, Created: time.Now().UTC()}
		if err := writeJSONAtomic(filepath.Join(dir, lineageFile), lin); err != nil {
			return nil, err
		}
	case err != nil:
		return nil, err
	default:
		if err := sameJob(lin, &job, width); err != nil {
			return nil, err
		}
		if lin.Complete() {
			return lin, nil
		}
		lin.Resumes++
	}
	var cp checkpoint
	if err := readJSON(filepath.Join(dir, checkpointFile), &cp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if cp.Next == 0 {
		cp.Next = job.From
	}
	if lin.Resumes > 0 {
		log.Info("reprocess: resuming", "version", job.ID, "from", tsstore.TimeOf(cp.Next), "points_done", cp.Points)
	}
	r := &run{job: &job, v: v, dir: dir, lin: lin, cp: cp, log: log, width: width}
	for _, s := range lin.Segments {
		r.total += s.Points
	}
	if err := r.exec(ctx); err != nil {
		return nil, fmt.Errorf("reprocess: job %s: %w", job.ID, err)
	}
	lin.Points, lin.Cells, lin.Metrics = r.cp.Points, r.cp.Cells, r.cp.Metrics
	lin.Completed = time.Now().UTC()
	if err := writeJSONAtomic(filepath.Join(dir, lineageFile), lin); err != nil {
		return nil, err
	}
	return lin, nil
}

func sameJob(l *Lineage, j *Job, width time.Duration) error {
	if l.Processor != j.Processor.Version() || l.From != j.From || l.Cutover != j.Cutover ||
		!slices.Equal(l.Filter, formatMatchers(j.Matchers)) || l.CellWidth != width.Milliseconds() {
		return tsstore.Errorf(tsstore.ErrConflict, "reprocess: version %s exists with other parameters (processor %s, range [%d, %d), filter %v)", l.ID, l.Processor, l.From, l.Cutover, l.Filter)
	}
	return nil
}

func listSegments(ctx context.Context, a archive.Archive, from, to int64) ([]SegmentRef, error) {
	infos, err := a.Segments(ctx, from, to)
	if err != nil {
		return nil, fmt.Errorf("reprocess: list archive segments: %w", err)
	}
	out := make([]SegmentRef, len(infos))
	for i, s := range infos {
		out[i] = SegmentRef{Name: s.Name, Checksum: s.Checksum, Points: s.Points, MinTime: s.ID.MinTime, MaxTime: s.ID.MaxTime}
	}
	return out, nil
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return tsstore.Errorf(tsstore.ErrUnavailable, "reprocess: read %s: %w", path, err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("reprocess: decode %s: %w", path, err)
	}
	return nil
}

// run is one execution of a job, from its checkpoint to the end or an
// error.
type run struct {
	job   *Job
	v     *Versions
	dir   string
	lin   *Lineage
	cp    checkpoint // the last checkpoint written, with Points counting further
	log   *slog.Logger
	width time.Duration
	total int64

	store *seqStore
	proc  *checkedProcessor
	// Two engines, each over its own cache: one takes the scan's points
	// while the other flushes the previous chunk, so that reading and
	// processing overlap with the store's writes.
	lanes [2]*writeback.Engine
	cur   int
	// pending receives the result of the flush in progress, if any, of
	// the chunk that ends at pendingCP.Next.
	pending   chan error
	pendingCP checkpoint

	batch      []tsstore.Point
	chunk      int   // raw points in the current lane
	cell       int64 // cell start of the last point read; -1 before the first
	position   int64 // timestamp of the last point read
	startPos   int64
	startPts   int64
	started    time.Time
	lastReport time.Time
}

// exec sets up the version's store, fresh caches and engines, and scans
// the archive from the checkpoint.
//
// Why the result does not depend on where a run was interrupted: a chunk
// ends only at a cell boundary of the time-ordered scan, each chunk is
// flushed whole by one engine, and the processor keeps derived points in
// their raw point's cell, so every cell of the version is aggregated within
// one generation of one run, from the same points in the same order. Its
// identity is fixed (VersionWriter, Seq 0) by seqStore rather than taken
// from the engine (the writer id of its cache and the generation number),
// which restarts with the fresh caches of a resumed run. A resumed
// run rewrites the cells after the checkpoint that the interrupted run may
// already have written, with the same identity and aggregate: a no-op.
// Chunks are flushed one at a time, in order, and a checkpoint is written
// after its chunk's flush.
func (r *run) exec(ctx context.Context) (err error) {
	st, err := r.v.OpenStore(r.job.ID)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := st.Close(); err == nil && cerr != nil {
			err = cerr
		}
	}()
	r.store = &seqStore{Store: st, writer: VersionWriter}
	r.proc = newCheckedProcessor(r.job.Processor, r.width, r.cp.Metrics)
	for i := range r.lanes {
		cdir := filepath.Join(r.dir, fmt.Sprintf("%s-%d", cacheDir, i))
		if err := os.RemoveAll(cdir); err != nil {
			return tsstore.Errorf(tsstore.ErrUnavailable, "discard cache: %w", err)
		}
		cache, err := localcache.Open(cdir, &localcache.Options{Fsync: localcache.FsyncNever, Logger: r.log})
		if err != nil {
			return err
		}
		defer func() {
			if cerr := cache.Close(); err == nil && cerr != nil {
				err = cerr
			}
			if err == nil {
				err = os.RemoveAll(cdir)
			}
		}()
		const century = 100 * 365 * 24 * time.Hour
		eng, err := writeback.New(cache, r.store, &writeback.Options{
			Processor:     r.proc,
			Source:        "reprocess",
			FlushInterval: -1,
			FlushBudget:   century,
			MaxCacheBytes: math.MaxInt64,
			FlushAtBytes:  math.MaxInt64,
			MaxLate:       2 * century,
			MaxFuture:     2 * century,
			Logger:        r.log,
		})
		if err != nil {
			return err
		}
		r.lanes[i] = eng
		defer func() {
			if err != nil {
				// Close flushes what the cache holds, which ends
				// between cell boundaries: refuse it, the next run
				// redoes it.
				r.store.refuse.Store(true)
				_ = eng.Close()
				return
			}
			err = eng.Close()
		}()
	}
	defer func() {
		if r.pending != nil { // stopped by an error: let the flush end
			r.store.refuse.Store(true)
			<-r.pending
		}
	}()
	r.batch = make([]tsstore.Point, 0, r.job.BatchPoints)
	r.cell = -1
	r.position, r.startPos, r.startPts = r.cp.Next, r.cp.Next, r.cp.Points
	r.started = time.Now()
	if r.cp.Next >= r.job.Cutover { // interrupted after its last checkpoint
		r.report(true)
		return nil
	}
	wms := r.width.Milliseconds()
	err = mergeSegments(ctx, r.job.Archive, r.lin.Segments, r.cp.Next, r.job.Cutover, r.job.Matchers, func(p tsstore.Point) error {
		c := p.Timestamp - p.Timestamp%wms
		if c != r.cell {
			if r.cell >= 0 && r.chunk >= r.job.ChunkPoints {
				if err := r.cut(ctx, c); err != nil {
					return err
				}
			}
			r.cell = c
		}
		r.position = p.Timestamp
		r.batch = append(r.batch, p)
		if len(r.batch) >= r.job.BatchPoints {
			return r.write(ctx)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := r.cut(ctx, r.job.Cutover); err != nil {
		return err
	}
	if err := r.wait(); err != nil {
		return err
	}
	r.report(true)
	return nil
}

// write hands the batch to the current engine, paces the run and reports
// progress.
func (r *run) write(ctx context.Context) error {
	if len(r.batch) == 0 {
		return nil
	}
	if err := r.lanes[r.cur].Write(ctx, r.batch); err != nil {
		return err
	}
	r.cp.Points += int64(len(r.batch))
	r.chunk += len(r.batch)
	r.batch = r.batch[:0]
	if r.job.Rate > 0 {
		due := r.started.Add(time.Duration(float64(r.cp.Points-r.startPts) / r.job.Rate * float64(time.Second)))
		if wait := time.Until(due); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-t.C:
			}
		}
	}
	if time.Since(r.lastReport) >= r.job.ProgressInterval {
		r.report(false)
	}
	return nil
}

// cut ends the current chunk at the cell boundary next: it waits for the
// previous chunk's flush (and checkpoint), starts flushing this one in the
// background and switches lanes.
func (r *run) cut(ctx context.Context, next int64) error {
	if err := r.write(ctx); err != nil {
		return err
	}
	if err := r.wait(); err != nil {
		return err
	}
	eng := r.lanes[r.cur]
	r.pendingCP = checkpoint{Next: next, Points: r.cp.Points, Metrics: r.proc.metricNames()}
	r.pending = make(chan error, 1)
	go func() {
		for {
			rep, err := eng.Flush(ctx)
			if err != nil || !rep.Overrun {
				r.pending <- err
				return
			}
		}
	}()
	r.cur ^= 1
	r.chunk = 0
	return nil
}

// wait waits for the flush in progress and writes its checkpoint: every
// cell before pendingCP.Next is then in the store.
func (r *run) wait() error {
	if r.pending == nil {
		return nil
	}
	err := <-r.pending
	r.pending = nil
	if err != nil {
		return err
	}
	cp := r.pendingCP
	cp.Cells = r.cp.Cells + r.store.written.Swap(0)
	if err := writeJSONAtomic(filepath.Join(r.dir, checkpointFile), &cp); err != nil {
		return err
	}
	r.cp.Next, r.cp.Cells, r.cp.Metrics = cp.Next, cp.Cells, cp.Metrics
	r.position = max(r.position, cp.Next)
	r.report(false)
	return nil
}

func (r *run) report(done bool) {
	r.lastReport = time.Now()
	p := Progress{ID: r.job.ID, Points: r.cp.Points, Total: max(r.total, r.cp.Points), Position: r.position,
		From: r.job.From, Cutover: r.job.Cutover, Done: done}
	span := float64(r.job.Cutover - r.job.From)
	p.Fraction = min(1, float64(r.position-r.job.From)/span)
	if done {
		p.Fraction, p.Position = 1, r.job.Cutover
	}
	el := time.Since(r.started)
	if s := el.Seconds(); s > 0 {
		p.Rate = float64(r.cp.Points-r.startPts) / s
	}
	if ran := float64(r.position - r.startPos); ran > 0 && !done {
		left := float64(r.job.Cutover - r.position)
		p.ETA = time.Duration(float64(el) * left / ran)
	}
	if r.job.Metrics != nil {
		r.job.Metrics.observe(p)
	}
	if r.job.Progress != nil {
		r.job.Progress(p)
	}
}

// VersionWriter is the writer of every cell of a version (see
// tsstore.Cell.Writer): the legacy writer "". A version is a store of its
// own, written by one job, so its cells need no writer name; and versions
// made before cells had writers hold cells of writer "", which a job
// resumed or a catch-up pass run by this version rewrites or adds to with
// the same identities.
const VersionWriter = ""

// seqStore gives every cell written through it the same identity (writer,
// seq), so that a version's cells do not depend on the writer id and the
// generation numbers of the job's cache. It counts the cells written.
type seqStore struct {
	tsstore.Store
	writer  string
	seq     uint32
	written atomic.Int64
	refuse  atomic.Bool // set when the run failed: nothing more may be written
	mu      sync.Mutex  // guards buf
	buf     []tsstore.Cell
}

func (s *seqStore) Write(ctx context.Context, cells []tsstore.Cell) error {
	if s.refuse.Load() {
		return tsstore.Errorf(tsstore.ErrClosed, "reprocess: the run stopped; its cache is discarded")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.buf = append(s.buf[:0], cells...)
	for i := range s.buf {
		s.buf[i].Writer, s.buf[i].Seq = s.writer, s.seq
	}
	if err := s.Store.Write(ctx, s.buf); err != nil {
		return err
	}
	s.written.Add(int64(len(cells)))
	return nil
}

// checkedProcessor runs the job's processor, checks that every derived
// point stays in its raw point's cell, and records the metric names made.
type checkedProcessor struct {
	p   tsstore.Processor
	wms int64

	mu      sync.Mutex // guards metrics
	metrics map[string]struct{}
}

func newCheckedProcessor(p tsstore.Processor, width time.Duration, metrics []string) *checkedProcessor {
	c := &checkedProcessor{p: p, wms: width.Milliseconds(), metrics: map[string]struct{}{}}
	for _, m := range metrics {
		c.metrics[m] = struct{}{}
	}
	return c
}

func (c *checkedProcessor) Version() string { return c.p.Version() }

func (c *checkedProcessor) Process(dst []tsstore.Point, p tsstore.Point) ([]tsstore.Point, error) {
	n := len(dst)
	dst, err := c.p.Process(dst, p)
	if err != nil {
		return dst, err
	}
	cell := p.Timestamp - p.Timestamp%c.wms
	for i := n; i < len(dst); i++ {
		d := &dst[i]
		if d.Timestamp < cell || d.Timestamp >= cell+c.wms {
			return dst, tsstore.Errorf(tsstore.ErrInvalid, "processor %s moved a point of %s%s at %d to %s at %d, outside its cell [%d, %d): reprocess needs derived points in their raw point's cell",
				c.p.Version(), p.Metric, p.Labels, p.Timestamp, d.Metric, d.Timestamp, cell, cell+c.wms)
		}
		c.mu.Lock()
		if _, ok := c.metrics[d.Metric]; !ok {
			c.metrics[d.Metric] = struct{}{}
		}
		c.mu.Unlock()
	}
	return dst, nil
}

func (c *checkedProcessor) metricNames() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]string, 0, len(c.metrics))
	for m := range c.metrics {
		out = append(out, m)
	}
	slices.Sort(out)
	return out
}
