package promtsdb

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"math/bits"
	"sync"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"

	"github.com/hourglass-io/hourglass/tsstore"
)

// oooCommitSamples is the most samples that may be out of order in one
// commit of the TSDB: a Write commits whenever it has appended that many.
// tsdb v0.316.0's Commit does work quadratic in the out-of-order chunks it
// starts (appenderCommitContext.collectOOORecords sizes a new slice by a
// count of m-map markers that it never resets within the commit), and
// every series of a flush that rewrites a late window starts one: one
// commit per Write of 10,000 such cells was most of the store's CPU
// (BenchmarkWriteFlushes). Those series start their chunks in step (a
// chunk holds 32 samples, and each series gets one per minute of the
// window), so some commits start a chunk with nearly every sample: at
// 1,024 samples such a commit allocated 8 MB of markers (half of all the
// Store's allocations), and 256 took about a fifth less CPU a cell (128
// no less, 64 more: each commit also writes to the TSDB's logs). In-order
// samples of a series the store knows do not count, so a flush of new
// minutes still commits once per Write; a series it does not know yet
// (since Open, or a failed commit) counts all of its. The Store's contract
// allows it: the cells of a failed Write may or may not be stored.
const oooCommitSamples = 256

// numStripes is the number of locks that serialize writes per series; a
// power of two at most 64 (a batch's stripes are a uint64 bit set).
const numStripes = 64

type stripe struct {
	mu     sync.Mutex // guards series and every field of the seriesStates in it
	series map[uint64]*seriesState
}

// seriesState is what the Store remembers of a series (metric, labels,
// writer) it has written since Open. A writer's partials are four TSDB
// series of their own (labelled with tsstore.WriterLabel), so every check
// below is per writer.
type seriesState struct {
	// Hot fields first: every cell of a Write reads them.
	metric string
	labels tsstore.Labels
	writer string
	refs   [numComps]storage.SeriesRef // head references of the four series (a hint: stale ones fall back to lsets)
	// known reports that maxTs is valid: no sample of the series is
	// stored above maxTs.
	known bool
	// While known: every stored sample of the series at or after seqFrom
	// has a Seq (its time within its cell width) of at most maxSeq, and
	// those of Seq maxSeq are at or before maxSeqLast. A cell there of a
	// higher Seq, or of Seq maxSeq after maxSeqLast, is not stored and
	// needs no read back: a writer's generations, and so its Seqs, grow
	// from flush to flush, and a flush writes oldest minute first, so a
	// flush that rewrites a late window writes only such cells.
	seqFrom, maxSeq, maxSeqLast int64
	slow                        bool // per Write: some cell of the batch must be checked
	maxTs                       int64
	// Per Write, valid while batch is that Write's number.
	batch    uint64
	batchMax int64 // largest timestamp of the batch's cells so far
	prevMax  int64 // maxTs before the batch (for a series not known before, set by readBack)
	runMax   int64 // per Write, in lateCells

	lsets  [numComps]labels.Labels // the four TSDB series
	readLo int64                   // per Write: smallest timestamp to read back; math.MaxInt64 for none
	readTo int64                   // per Write: largest timestamp to read back (of a known series)
	stored map[int64]*comps        // per Write: what readBack found
	next   *seriesState            // another series with the same hash
}

// comps holds the stored components of one timestamp.
type comps struct {
	v   [numComps]float64
	has uint8 // bit k set: v[k] is stored
}

const allComps = 1<<numComps - 1

// lookup returns the state of c's series, creating it if needed, after
// validating c: fully for a new series, and for a known one (whose metric
// and labels were valid) only what Cell.Validate checks beyond them.
func (s *Store) lookup(st *stripe, h uint64, c *tsstore.Cell) (*seriesState, error) {
	for ss := st.series[h]; ss != nil; ss = ss.next {
		if ss.metric == c.Metric && ss.writer == c.Writer && ss.labels.Equal(c.Labels) {
			if c.Start < 0 || c.Start >= tsstore.MaxTimestamp || c.Start%s.widthMs != 0 || int64(c.Seq) >= s.widthMs || c.Agg.Validate() != nil {
				return nil, c.Validate(s.width) // words the error
			}
			return ss, nil
		}
	}
	if err := c.Validate(s.width); err != nil {
		return nil, err
	}
	ss := &seriesState{metric: c.Metric, labels: c.Labels.Copy(), writer: c.Writer, next: st.series[h]}
	var b labels.ScratchBuilder
	for k := range ss.lsets {
		b.Reset()
		b.Add(nameLabel, seriesName(c.Metric, k))
		for _, l := range c.Labels {
			b.Add(l.Name, l.Value)
		}
		if c.Writer != "" {
			b.Add(writerLabel, c.Writer)
		}
		b.Sort()
		ss.lsets[k] = b.Labels()
	}
	st.series[h] = ss
	return ss, nil
}

// hashSeries hashes c's metric, labels and writer with the process-local
// seed (the hashes only key in-memory maps).
func hashSeries(c *tsstore.Cell) uint64 {
	h := maphash.String(hashSeed, c.Metric)
	for _, l := range c.Labels {
		h = (h*0x100000001b3 ^ maphash.String(hashSeed, l.Name)) * 0x100000001b3
		h ^= maphash.String(hashSeed, l.Value)
	}
	if c.Writer != "" {
		h = (h * 0x100000001b3) ^ maphash.String(hashSeed, c.Writer)
	}
	return h
}

var hashSeed = maphash.MakeSeed()

// Write stores cells as samples of four series each (see the package
// comment). Invalid cells fail the call with ErrInvalid, and a conflicting
// cell with ErrConflict, before anything is appended. It returns after the
// TSDB's Commit has written the samples to its write-ahead log (and the
// late cells to the Store's redo log, see redo.go).
func (s *Store) Write(ctx context.Context, cells []tsstore.Cell) error {
	return s.write(ctx, cells, true)
}

// write is Write; redo false skips the redo log (for its replay).
func (s *Store) write(ctx context.Context, cells []tsstore.Cell, redo bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := s.enter("write"); err != nil {
		return err
	}
	defer s.closeMu.RUnlock()
	if len(cells) == 0 {
		return nil
	}

	sc := s.scratch(len(cells))
	defer s.scratchPool.Put(sc)
	hashes, states, todo := sc.hashes, sc.states, sc.todo
	var locked uint64
	for i := range cells {
		h := hashSeries(&cells[i])
		hashes[i] = h
		locked |= 1 << (h % numStripes)
	}
	for k := 0; k < numStripes; k++ {
		if locked&(1<<k) != 0 {
			s.stripes[k].mu.Lock()
		}
	}
	defer func() {
		for k := 0; k < numStripes; k++ {
			if locked&(1<<k) != 0 {
				s.stripes[k].mu.Unlock()
			}
		}
	}()

	// First pass: validate, find each cell's series and classify. Cells
	// above what is stored for their series (the common case of a flush)
	// need no check; the others are checked before anything is appended.
	// (Two passes measured faster than appending in the first: tried again
	// with tsdb v0.316.0.)
	batch := s.batchSeq.Add(1)
	slow, again := false, false
	minTs := int64(math.MaxInt64)
	for i := range cells {
		c := &cells[i]
		ss, err := s.lookup(&s.stripes[hashes[i]%numStripes], hashes[i], c)
		if err != nil {
			return fmt.Errorf("promtsdb: write: cell %d: %w", i, err)
		}
		states[i] = ss
		todo[i] = allComps
		ts := c.Start + int64(c.Seq)
		if ss.batch != batch {
			ss.batch, ss.batchMax, ss.prevMax, ss.slow, ss.readLo, ss.readTo, ss.stored = batch, math.MinInt64, ss.maxTs, false, math.MaxInt64, math.MinInt64, nil
		}
		if !ss.known || ts <= ss.prevMax || ts <= ss.batchMax {
			ss.slow, slow = true, true
		}
		if ts <= ss.batchMax {
			again = true // it may repeat an earlier cell of the batch
		}
		ss.batchMax = max(ss.batchMax, ts)
		minTs = min(minTs, ts)
	}
	if slow {
		if err := s.check(ctx, cells, states, todo, again); err != nil {
			return err
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}

	// Second pass: append, and commit or roll back, one Write at a time
	// (see appendMu).
	s.appendMu.Lock()
	defer s.appendMu.Unlock()
	commit := func(app storage.AppenderV2) error {
		if err := app.Commit(); err != nil {
			// What reached the TSDB is unknown: read the series back next time.
			for _, ss := range states {
				ss.known = false
			}
			return tsstore.Errorf(tsstore.ErrUnavailable, "promtsdb: write: commit: %w", err)
		}
		return nil
	}
	oooFrom := s.oooBelow()
	app := s.db.AppenderV2(ctx)
	pending := 0 // samples appended since the last commit that may be out of order
	for i := range cells {
		if todo[i] == 0 {
			continue
		}
		if err := s.append(app, i, &cells[i], states[i], todo[i]); err != nil {
			_ = app.Rollback()
			return err
		}
		if !states[i].slow && cells[i].Start+int64(cells[i].Seq) >= oooFrom {
			continue // in order
		}
		if pending += bits.OnesCount8(todo[i]); pending >= s.oooCommit {
			if err := commit(app); err != nil {
				return err
			}
			app, pending = s.db.AppenderV2(ctx), 0
		}
	}
	if err := commit(app); err != nil {
		return err
	}
	if !redo {
		return nil
	}
	// The newest sample now is at least what the appender saw, so this
	// bound is at least the TSDB's: the cells below it are a superset.
	oooBelow := s.oooBelow()
	if slow || minTs < oooBelow {
		if err := s.redo.append(cells, lateCells(cells, states, oooBelow)); err != nil {
			// Committed but not logged: a retry finds them stored and
			// logs them (lateCells counts found cells too).
			return tsstore.Errorf(tsstore.ErrUnavailable, "promtsdb: write: redo log: %w", err)
		}
	}
	return nil
}

// oooBelow returns the time below which the TSDB takes every sample out of
// order, whatever the series: half its head chunk range (1 h) behind its
// newest sample; math.MinInt64 while it holds none.
func (s *Store) oooBelow() int64 {
	newest := s.db.Head().MaxTime()
	if newest == math.MinInt64 {
		return math.MinInt64
	}
	return newest - tsdb.DefaultBlockDuration/2
}

// lateCells reports which cells of the batch the TSDB holds out of order:
// those below oooBelow, and those at or below the series' newest stored
// sample or an earlier cell of the batch (only the series checked by check
// can have such cells). Cells found already stored count too: a retry of a
// Write whose redo append failed must log them.
func lateCells(cells []tsstore.Cell, states []*seriesState, oooBelow int64) []bool {
	for _, ss := range states {
		if ss.slow {
			ss.runMax = ss.prevMax
		}
	}
	late := make([]bool, len(cells))
	for i := range cells {
		ts := cells[i].Start + int64(cells[i].Seq)
		if ts < oooBelow {
			late[i] = true
		}
		if ss := states[i]; ss.slow {
			if ts <= ss.runMax {
				late[i] = true
			}
			ss.runMax = max(ss.runMax, ts)
		}
	}
	return late
}

// writeScratch is the per-cell working memory of a Write, pooled: a flush
// writes batches of thousands of cells, and allocating (and zeroing) it
// on every call cost a measurable share of the write path.
type writeScratch struct {
	hashes []uint64       // series hash
	states []*seriesState // the cell's series (set for every cell before use)
	todo   []uint8        // the components still to append
}

// scratch returns a writeScratch for n cells. Its slices are not zeroed:
// the first pass of Write sets every element before it is read.
func (s *Store) scratch(n int) *writeScratch {
	sc, _ := s.scratchPool.Get().(*writeScratch)
	if sc == nil {
		sc = new(writeScratch)
	}
	if cap(sc.hashes) < n {
		sc.hashes, sc.states, sc.todo = make([]uint64, n), make([]*seriesState, n), make([]uint8, n)
	}
	sc.hashes, sc.states, sc.todo = sc.hashes[:n], sc.states[:n], sc.todo[:n]
	return sc
}

// append appends the components in mask of cell i.
func (s *Store) append(app storage.AppenderV2, i int, c *tsstore.Cell, ss *seriesState, mask uint8) error {
	ts := c.Start + int64(c.Seq)
	vals := [numComps]float64{float64(c.Count), c.Sum, c.Min, c.Max}
	for k := range vals {
		if mask&(1<<k) == 0 {
			continue
		}
		ref, err := app.Append(ss.refs[k], ss.lsets[k], 0, ts, vals[k], nil, nil, storage.AppendV2Options{})
		if err != nil {
			return s.appendError(i, c, err)
		}
		ss.refs[k] = ref
	}
	// Raising the bound before the commit is safe: it is an upper bound.
	ss.maxTs = max(ss.maxTs, ts)
	if ss.unstored(ts, c.Seq) {
		ss.maxSeq, ss.maxSeqLast = int64(c.Seq), ts
	}
	return nil
}

func (s *Store) appendError(i int, c *tsstore.Cell, err error) error {
	if errors.Is(err, storage.ErrTooOldSample) || errors.Is(err, storage.ErrOutOfBounds) {
		newest := s.db.Head().MaxTime()
		return tsstore.Errorf(tsstore.ErrInvalid, "promtsdb: write: cell %d %s (start %s) is %w: the newest stored sample is at %s: %w",
			i, c.IDString(), fmtTime(c.Start), ErrTooOld, fmtTime(newest), err)
	}
	if errors.Is(err, storage.ErrDuplicateSampleForTimestamp) {
		// Only reachable when the DB is also written through As.
		return tsstore.Errorf(tsstore.ErrConflict, "promtsdb: write: cell %d %s: %w", i, c.IDString(), err)
	}
	return tsstore.Errorf(tsstore.ErrUnavailable, "promtsdb: write: cell %d %s: %w", i, c.IDString(), err)
}

func fmtTime(ms int64) string { return tsstore.TimeOf(ms).Format(time.RFC3339Nano) }

type pendKey struct {
	ss *seriesState
	ts int64
}

// check handles the cells of the series marked slow: duplicates within the
// batch, and cells that may already be stored, which it reads back. It sets
// todo[i] to the components still to append (0 for an identical rewrite)
// and fails with ErrConflict on a different aggregate. again reports that
// some cell is at or before an earlier cell of its series in the batch:
// without one, no cell repeats another, and the map that finds repeats
// (most of check's CPU in a flush of a late window, which has none) is
// not built.
func (s *Store) check(ctx context.Context, cells []tsstore.Cell, states []*seriesState, todo []uint8, again bool) error {
	// Duplicates within the batch.
	var first map[pendKey]int
	if again {
		first = make(map[pendKey]int)
	}
	var reads []*seriesState
	lo, hi := int64(math.MaxInt64), int64(math.MinInt64)
	for i := range cells {
		ss := states[i]
		if !ss.slow {
			continue
		}
		c := &cells[i]
		ts := c.Start + int64(c.Seq)
		if again {
			k := pendKey{ss, ts}
			if j, ok := first[k]; ok {
				if cells[j].Agg != c.Agg {
					return tsstore.Errorf(tsstore.ErrConflict, "promtsdb: write: cell %d %s appears twice in the batch (also as cell %d) with different aggregates: %+v and %+v",
						i, c.IDString(), j, cells[j].Agg, c.Agg)
				}
				todo[i] = 0
				continue
			}
			first[k] = i
		}
		if todo[i] != 0 && (!ss.known || ts <= ss.prevMax) && !(ss.unstored(ts, c.Seq) && !s.external.Load()) {
			if ss.readLo == math.MaxInt64 {
				reads = append(reads, ss)
			}
			ss.readLo, ss.readTo = min(ss.readLo, ts), max(ss.readTo, ts)
		}
	}
	if len(reads) == 0 {
		return nil
	}
	for _, ss := range reads {
		lo = min(lo, ss.readLo)
		hi = max(hi, ss.readHi())
	}
	q, err := s.db.Querier(lo, hi)
	if err != nil {
		return tsstore.Errorf(tsstore.ErrUnavailable, "promtsdb: write: reading stored cells: %w", err)
	}
	defer q.Close()
	var it chunkenc.Iterator
	for _, ss := range reads {
		if err := ctx.Err(); err != nil {
			return err
		}
		if it, err = s.readBack(ctx, q, ss, it); err != nil {
			return err
		}
	}
	// Compare the cells with what is stored.
	for i := range cells {
		ss := states[i]
		if !ss.slow || todo[i] == 0 || ss.stored == nil {
			continue
		}
		c := &cells[i]
		got := ss.stored[c.Start+int64(c.Seq)]
		if got == nil {
			continue
		}
		want := [numComps]float64{float64(c.Count), c.Sum, c.Min, c.Max}
		for k := range want {
			if got.has&(1<<k) != 0 && got.v[k] != want[k] {
				return tsstore.Errorf(tsstore.ErrConflict, "promtsdb: write: cell %d %s is stored as %v, not %+v",
					i, c.IDString(), got, c.Agg)
			}
		}
		todo[i] = allComps &^ got.has
	}
	for _, ss := range reads {
		ss.stored = nil
	}
	return nil
}

// readSeries reads the samples in [from, to] of series, component k of ss,
// into ss.stored, raising *newest to the newest of them; it reuses the
// iterator it and returns it.
func (ss *seriesState) readSeries(series storage.Series, k int, from, to int64, newest *int64, it chunkenc.Iterator) (chunkenc.Iterator, error) {
	it = series.Iterator(it)
	// Samples come in time order: from the first at or after from to the
	// last at or before to.
	for vt := it.Seek(from); vt != chunkenc.ValNone; vt = it.Next() {
		if vt != chunkenc.ValFloat {
			continue
		}
		t, v := it.At()
		if t > to {
			break
		}
		*newest = max(*newest, t)
		cs := ss.stored[t]
		if cs == nil {
			cs = &comps{}
			ss.stored[t] = cs
		}
		cs.v[k] = v
		cs.has |= 1 << k
	}
	if err := it.Err(); err != nil {
		return it, tsstore.Errorf(tsstore.ErrUnavailable, "promtsdb: write: reading %s%s: %w", ss.metric, ss.labels, err)
	}
	return it, nil
}

// unstored reports whether the cell at ts of Seq seq is surely not stored
// (see seqFrom).
func (ss *seriesState) unstored(ts int64, seq uint32) bool {
	return ss.known && ts >= ss.seqFrom && (int64(seq) > ss.maxSeq || int64(seq) == ss.maxSeq && ts > ss.maxSeqLast)
}

// maxSeqOf returns the largest Seq of the stored timestamps (-1 for none;
// a timestamp's Seq is its offset in its cell of widthMs) and the last of
// them of that Seq.
func maxSeqOf(stored map[int64]*comps, widthMs int64) (seq, last int64) {
	seq, last = -1, math.MinInt64
	for t := range stored {
		switch s := t % widthMs; {
		case s > seq:
			seq, last = s, t
		case s == seq:
			last = max(last, t)
		}
	}
	return seq, last
}

// readHi is the last timestamp a read of ss must cover.
func (ss *seriesState) readHi() int64 {
	if ss.known {
		// Only the batch's own timestamps are compared, all at or
		// below prevMax: a flush that rewrites a late window oldest
		// minute first has one cell of a series in each of many
		// Writes, and reading up to prevMax in each read the rest of
		// the window again and again (BenchmarkWriteFlushes).
		return ss.readTo
	}
	return math.MaxInt64 // all of it, to find the series' newest time
}

// readBack reads the stored samples of ss in [ss.readLo, ss.readHi()] into
// ss.stored and, when ss was not known, establishes ss.maxTs.
func (s *Store) readBack(ctx context.Context, q storage.Querier, ss *seriesState, it chunkenc.Iterator) (chunkenc.Iterator, error) {
	lo, hi := ss.readLo, ss.readHi()
	ms := make([]*labels.Matcher, 0, len(ss.labels)+2)
	ms = append(ms, nameMatcher(ss.metric))
	for _, l := range ss.labels {
		ms = append(ms, labels.MustNewMatcher(labels.MatchEqual, l.Name, l.Value))
	}
	// The writer's series only: an empty value selects the series without
	// the label (the legacy writer's).
	ms = append(ms, labels.MustNewMatcher(labels.MatchEqual, writerLabel, ss.writer))
	want := len(ss.labels) + 1
	if ss.writer != "" {
		want++
	}
	set := q.Select(ctx, false, &storage.SelectHints{Start: lo, End: hi}, ms...)
	ss.stored = make(map[int64]*comps)
	newest := lo - 1
	for set.Next() {
		series := set.At()
		lset := series.Labels()
		if lset.Len() != want { // a series with more labels
			continue
		}
		k := componentOf(lset.Get(nameLabel), ss.metric)
		if k < 0 {
			continue
		}
		var err error
		if it, err = ss.readSeries(series, k, lo, hi, &newest, it); err != nil {
			return it, err
		}
	}
	if err := set.Err(); err != nil {
		return it, tsstore.Errorf(tsstore.ErrUnavailable, "promtsdb: write: reading %s%s: %w", ss.metric, ss.labels, err)
	}
	if !ss.known {
		ss.known, ss.maxTs, ss.prevMax = true, newest, newest
		ss.seqFrom = lo
		ss.maxSeq, ss.maxSeqLast = maxSeqOf(ss.stored, s.widthMs)
	}
	return it, nil
}
