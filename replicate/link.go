package replicate

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/hourglass-io/hourglass/internal/atomicfile"
	"github.com/hourglass-io/hourglass/tsstore"
)

// link is the Store's connection to one replica: its hint log with the
// pending records (the replica's queue, spilled to disk), the direct writes
// in flight (when it is the primary), its position, and its applier
// goroutine, which writes pending records to the replica in order.
type link struct {
	s      *Store
	name   string
	store  tsstore.Store
	fencer Fencer         // nil when the replica cannot be fenced
	wake   chan struct{}  // capacity 1: work or a passed probe
	batch  []tsstore.Cell // the applier's buffer to coalesce records; only step uses it
	// archiveWaitGen is 1 + the staleGen for which the applier last logged
	// why a re-sync from the archive waits; only the applier uses it.
	archiveWaitGen uint64

	syncMu sync.Mutex // serialises fsyncs of the log

	mu             sync.Mutex // guards the fields below
	log            *hintLog
	pend           []*record // unapplied records, sorted by seq
	pendBytes      int64
	memBytes       int64               // bytes of pend held in memory
	inflight       map[uint64]struct{} // direct writes in flight
	registered     uint64              // the newest write registered to this link
	stale          *staleRange         // non-nil: dropped hints to re-sync
	staleGen       uint64              // counts changes of stale
	healthy        bool                // by the last check
	kicked         bool                // a passed probe asks for a retry now
	failing        bool                // the last apply (or direct write) failed
	failedAt       time.Time
	lastErr        error
	failures       uint64 // failed applies and direct writes
	applied        uint64 // records applied from the log
	conflicts      uint64 // cells skipped because the replica refused them
	resyncs        uint64 // re-syncs done from another replica
	archiveResyncs uint64 // re-syncs done from the archive
	changed        chan struct{}
}

func (l *link) String() string { return l.name }

// notifyLocked wakes the goroutines waiting for a change of l.
func (l *link) notifyLocked() {
	close(l.changed)
	l.changed = make(chan struct{})
}

// kick wakes the applier.
func (l *link) kick() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// appliedLocked returns the newest seq such that this replica applied every
// write up to it.
func (l *link) appliedLocked() uint64 {
	m := l.registered
	if l.stale != nil && l.stale.MinSeq-1 < m {
		m = l.stale.MinSeq - 1
	}
	if len(l.pend) > 0 && l.pend[0].seq-1 < m {
		m = l.pend[0].seq - 1
	}
	for s := range l.inflight {
		if s-1 < m {
			m = s - 1
		}
	}
	return m
}

func (l *link) appliedUpTo() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.appliedLocked()
}

// appendLocked adds the sealed record buf (write seq, cells spanning sp) to
// the pending records. Over the budget, or when the log cannot be written,
// the replica is marked stale instead: its hints are dropped and the range
// they covered is recorded for a re-sync.
func (l *link) appendLocked(seq uint64, at int64, buf []byte, cells []tsstore.Cell, sp span) {
	size := int64(len(buf))
	if l.pendBytes+size > l.s.opts.HintBudget {
		l.dropLocked(seq, at, sp, fmt.Errorf("hint budget of %d bytes exhausted", l.s.opts.HintBudget))
		return
	}
	seg, off, err := l.log.append(buf)
	if err != nil {
		l.dropLocked(seq, at, sp, fmt.Errorf("hint log: %w", err))
		return
	}
	rec := &record{seq: seq, at: at, seg: seg, off: off, size: size, span: sp}
	if cells != nil && l.memBytes+size <= l.s.opts.QueueBytes {
		rec.cells = cells
		l.memBytes += size
	}
	l.pendBytes += size
	if n := len(l.pend); n == 0 || l.pend[n-1].seq < seq {
		l.pend = append(l.pend, rec)
		return
	}
	i, _ := slices.BinarySearchFunc(l.pend, seq, func(r *record, s uint64) int { return cmpUint(r.seq, s) })
	l.pend = slices.Insert(l.pend, i, rec)
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// dropLocked marks the replica stale: the pending records and the write seq
// (made at time at, with span sp) are dropped from the log and recorded as
// a range to re-sync from a healthy replica or the archive.
func (l *link) dropLocked(seq uint64, at int64, sp span, why error) {
	st := staleRange{MinSeq: seq, MaxSeq: seq}
	if l.stale != nil {
		st = *l.stale
		st.Metrics = slices.Clone(st.Metrics)
		st.Seqs = slices.Clone(st.Seqs)
		st.Flushes = slices.Clone(st.Flushes)
	}
	add := func(s uint64, at int64, p span) {
		st.MinSeq, st.MaxSeq = min(st.MinSeq, s), max(st.MaxSeq, s)
		st.Last = max(st.Last, at)
		st.merge(p)
	}
	add(seq, at, sp)
	for _, r := range l.pend {
		add(r.seq, r.at, r.span)
	}
	l.log.reset()
	l.pend, l.pendBytes, l.memBytes = nil, 0, 0
	l.stale = &st
	l.staleGen++
	l.notifyLocked()
	if err := l.s.setStale(l.name, &st); err != nil {
		l.s.log.Error("replicate: cannot persist stale range", "replica", l.name, "err", err)
	}
	l.s.log.Warn("replicate: replica marked stale, it will be re-synced",
		"replica", l.name, "why", why, "from", st.From, "to", st.To, "metrics", len(st.Metrics), "seqs", fmt.Sprint(st.MinSeq, "..", st.MaxSeq))
}

// write writes cells to the replica at epoch.
func (l *link) write(ctx context.Context, epoch uint64, cells []tsstore.Cell) error {
	if l.fencer != nil {
		return l.fencer.WriteEpoch(ctx, epoch, cells)
	}
	return l.store.Write(ctx, cells)
}

// skippable reports whether err refuses cells for good (a conflict or
// invalid cell), rather than the replica being unavailable or fenced.
func skippable(err error) bool {
	return (errors.Is(err, tsstore.ErrConflict) || errors.Is(err, tsstore.ErrInvalid)) && !errors.Is(err, ErrFenced)
}

// apply writes cells from hints or a re-sync: a batch refused for a
// conflict is retried cell by cell, and the refused cells are skipped,
// counted and logged (they can never be applied; the replica keeps what it
// has).
func (l *link) apply(ctx context.Context, epoch uint64, cells []tsstore.Cell) error {
	err := l.write(ctx, epoch, cells)
	if err == nil || !skippable(err) {
		return err
	}
	skipped := 0
	for i := range cells {
		err := l.write(ctx, epoch, cells[i:i+1])
		switch {
		case err == nil:
		case skippable(err):
			skipped++
			l.s.log.Error("replicate: replica refused a cell, skipped", "replica", l.name, "cell", cells[i].IDString(), "err", err)
		default:
			return err
		}
	}
	l.mu.Lock()
	l.conflicts += uint64(skipped)
	l.mu.Unlock()
	return nil
}

// direct writes cells of write seq to the replica as the primary. When it
// fails, the batch (its sealed record buf) becomes a hint of this replica,
// so that it converges with the standbys that got it (buf is nil when
// there were none: it is encoded then).
func (l *link) direct(ctx context.Context, seq, epoch uint64, at int64, cells []tsstore.Cell, buf []byte, sp span) error {
	err := l.write(ctx, epoch, cells)
	if err != nil && buf == nil {
		buf = newRecordBuf(cells)
		sealRecord(buf, seq, at)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.inflight, seq)
	if err != nil {
		if !errors.Is(err, ErrFenced) && !errors.Is(err, tsstore.ErrInvalid) {
			l.appendLocked(seq, at, buf, slices.Clone(cells), sp)
		}
		if skippable(err) {
			l.kicked = true // a refused cell, not an outage: replay the rest now
		} else {
			l.failLocked(err)
		}
	}
	l.notifyLocked()
	return err
}

func (l *link) failLocked(err error) {
	l.failing, l.failedAt, l.lastErr = true, time.Now(), err
	l.failures++
}

// run is the applier: it writes the pending records to the replica, oldest
// first, re-syncing first when the replica is stale. After a failure it
// waits for RetryBackoff or a passed probe.
func (l *link) run(ctx context.Context) {
	defer l.s.wg.Done()
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		wait, err := l.step(ctx)
		if err != nil && errors.Is(err, ErrFenced) {
			l.s.setFenced(err)
		}
		if wait == 0 {
			if ctx.Err() != nil {
				return
			}
			continue
		}
		t.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-l.wake:
		case <-t.C:
		}
	}
}

// step applies one batch of pending records (or a re-sync). It returns how
// long to wait before the next step (0: go on).
func (l *link) step(ctx context.Context) (time.Duration, error) {
	const idle = time.Hour // until woken
	o := &l.s.opts
	// A write of this step refused as fenced while this Store's epoch
	// moved past e0 was refused because of this Store's own promotion (it
	// fenced the replica while the write was on its way): it is retried
	// at the new epoch rather than taken for a newer writer's fence.
	e0 := l.s.epoch.Load()
	l.mu.Lock()
	if l.failing && !l.kicked {
		if d := o.RetryBackoff - time.Since(l.failedAt); d > 0 {
			l.mu.Unlock()
			return d, nil
		}
	}
	l.kicked = false
	if l.stale != nil {
		l.mu.Unlock()
		err := l.resync(ctx)
		if err != nil {
			if errors.Is(err, errNoSource) {
				return o.RetryBackoff, nil
			}
			if errors.Is(err, ErrFenced) && l.s.epoch.Load() > e0 {
				return 0, nil
			}
			l.mu.Lock()
			l.failLocked(err)
			l.notifyLocked()
			l.mu.Unlock()
			return o.RetryBackoff, err
		}
		return 0, nil
	}
	if len(l.pend) == 0 {
		l.mu.Unlock()
		return idle, nil
	}
	// Collect the batches under the lock (reading spilled ones from the
	// log, whose files the lock guards) and join them outside it: the
	// writer appends to this link's log under the same lock.
	var recs []*record
	var parts [][]tsstore.Cell
	var bytes int64
	var rerr error
	n := 0
	for _, r := range l.pend {
		if len(recs) > 0 && bytes+r.size > o.ApplyBytes {
			break
		}
		cs := r.cells
		if cs == nil {
			cs, rerr = l.log.read(r)
		}
		if rerr != nil {
			break
		}
		recs = append(recs, r)
		parts = append(parts, cs)
		n += len(cs)
		bytes += r.size
	}
	if rerr != nil && len(recs) == 0 {
		// An unreadable hint: its data cannot be replayed, so the replica
		// must be re-synced for its range. Never drop it silently.
		r := l.pend[0]
		l.pend = l.pend[1:]
		l.pendBytes -= r.size
		if r.cells != nil {
			l.memBytes -= r.size
		}
		l.log.release(r)
		l.dropLocked(r.seq, r.at, r.span, rerr)
		l.mu.Unlock()
		return 0, nil
	}
	epoch := l.s.epoch.Load()
	l.mu.Unlock()

	// The records' cells are never modified once appended, so they are
	// read here without the lock. One record is written as it is; several
	// are coalesced into one Write in a buffer the applier reuses (a
	// replica does not keep the slice it is given).
	cells := parts[0]
	if len(parts) > 1 {
		cells = l.batch[:0]
		if cap(cells) < n {
			cells = make([]tsstore.Cell, 0, n)
		}
		for _, p := range parts {
			cells = append(cells, p...)
		}
		l.batch = cells
	}
	err := l.apply(ctx, epoch, cells)

	if err != nil && errors.Is(err, ErrFenced) && l.s.epoch.Load() > e0 {
		return 0, nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		l.failLocked(err)
		l.notifyLocked()
		return o.RetryBackoff, err
	}
	for _, r := range recs {
		i := 0
		if len(l.pend) == 0 || l.pend[0] != r {
			if i = slices.Index(l.pend, r); i < 0 {
				continue // dropped meanwhile (marked stale)
			}
		}
		if i == 0 {
			l.pend = l.pend[1:]
		} else {
			l.pend = slices.Delete(l.pend, i, i+1)
		}
		l.pendBytes -= r.size
		if r.cells != nil {
			l.memBytes -= r.size
		}
		l.log.release(r)
		l.applied++
	}
	if len(l.pend) == 0 {
		l.pend = nil // let the backing array go
	}
	l.failing = false
	l.notifyLocked()
	return 0, nil
}

// waitApplied waits until the replica applied write seq. It fails at once
// when the replica was failing when the write was registered (failing) or
// when an apply fails after it (failures is the count at registration).
func (l *link) waitApplied(ctx context.Context, seq, failures uint64, failing bool) error {
	for {
		l.mu.Lock()
		switch {
		case l.appliedLocked() >= seq:
			l.mu.Unlock()
			return nil
		case l.stale != nil:
			l.mu.Unlock()
			return tsstore.Errorf(tsstore.ErrUnavailable, "replica is stale (hints dropped), awaiting re-sync")
		case failing || l.failures > failures || l.failing && !l.healthy:
			err := l.lastErr
			l.mu.Unlock()
			return fmt.Errorf("replica is failing: %w", err)
		}
		ch := l.changed
		l.mu.Unlock()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		}
	}
}

// sync fsyncs what was appended to the log so far.
func (l *link) sync() error {
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	l.mu.Lock()
	files, dir := l.log.dirtyFiles()
	l.mu.Unlock()
	var errs []error
	for _, f := range files {
		if err := f.Sync(); err != nil && !errors.Is(err, os.ErrClosed) {
			errs = append(errs, err)
		}
	}
	if dir {
		if err := atomicfile.SyncDir(l.log.dir); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
