package replicate

import (
	"context"
	"errors"
	"fmt"

	"github.com/hourglass-io/hourglass/tsstore"
)

// errNoSource reports that a stale replica cannot be re-synced yet: no
// healthy replica has the writes it misses (and the archive cannot serve
// either, or there is none). The applier retries after RetryBackoff.
var errNoSource = errors.New("no healthy, caught-up replica to re-sync from")

// resyncChunk is the most cells one re-sync write carries.
const resyncChunk = 10_000

// resync re-syncs the stale range of l (every cell of its metrics in its
// time range): copied from a healthy replica that has applied the writes
// of the range, the primary first, or rebuilt from the archive when no
// replica can serve (or Options.ResyncFromArchive asks for it). Cells are
// idempotent, so writing more than was missed is harmless, and a re-sync
// interrupted by a crash is simply redone.
func (l *link) resync(ctx context.Context) error {
	l.mu.Lock()
	if l.stale == nil {
		l.mu.Unlock()
		return nil
	}
	if !l.healthy {
		l.mu.Unlock()
		return errNoSource
	}
	st := *l.stale
	gen := l.staleGen
	l.mu.Unlock()

	o := &l.s.opts
	var (
		from   string
		copied int64
		err    error
	)
	src := l.s.resyncSource(l, st.MaxSeq)
	switch {
	case o.Archive != nil && (o.ResyncFromArchive || src == nil):
		from = "archive"
		l.s.log.Info("replicate: re-sync started", "replica", l.name, "from_archive", true, "from", st.From, "to", st.To, "metrics", len(st.Metrics), "generations", len(st.Seqs)+len(st.Flushes))
		copied, err = l.resyncFromArchive(ctx, &st, gen)
		if errors.Is(err, errNoSource) {
			return err
		}
		if err != nil {
			err = fmt.Errorf("re-sync from the archive: %w", err)
		}
	case src == nil:
		return errNoSource
	default:
		from = src.name
		l.s.log.Info("replicate: re-sync started", "replica", l.name, "from_replica", src.name, "from", st.From, "to", st.To, "metrics", len(st.Metrics))
		copied, err = l.copyFrom(ctx, src, &st)
	}
	if err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.staleGen != gen {
		return nil // more hints were dropped meanwhile: go again
	}
	l.stale = nil
	l.failing = false
	if from == "archive" {
		l.archiveResyncs++
	} else {
		l.resyncs++
	}
	l.notifyLocked()
	if err := l.s.setStale(l.name, nil); err != nil {
		l.s.log.Error("replicate: cannot persist the end of a re-sync", "replica", l.name, "err", err)
	}
	l.s.log.Info("replicate: re-sync done", "replica", l.name, "source", from, "cells", copied)
	return nil
}

// copyFrom copies the cells of st from the replica src.
func (l *link) copyFrom(ctx context.Context, src *link, st *staleRange) (int64, error) {
	epoch := l.s.epoch.Load()
	win := l.s.opts.ResyncWindow.Milliseconds()
	var copied int64
	for _, m := range st.Metrics {
		for from := st.From; from < st.To; from += win {
			cells, err := src.store.Cells(ctx, tsstore.Selector{Metric: m, From: from, To: min(from+win, st.To)})
			if err != nil {
				return copied, fmt.Errorf("re-sync from %s: %w", src.name, err)
			}
			for len(cells) > 0 {
				n := min(len(cells), resyncChunk)
				if err := l.apply(ctx, epoch, cells[:n]); err != nil {
					return copied, fmt.Errorf("re-sync: %w", err)
				}
				copied += int64(n)
				cells = cells[n:]
			}
		}
	}
	return copied, nil
}

// resyncSource returns a replica other than l that is healthy, not stale,
// not failing and has applied every write up to seq; the primary when it
// qualifies.
func (s *Store) resyncSource(l *link, seq uint64) *link {
	s.order.Lock()
	primary := s.primary
	s.order.Unlock()
	var best *link
	for _, r := range s.links {
		if r == l {
			continue
		}
		r.mu.Lock()
		ok := r.healthy && r.stale == nil && !r.failing && r.appliedLocked() >= seq
		r.mu.Unlock()
		if ok && (best == nil || r == primary) {
			best = r
		}
	}
	return best
}
