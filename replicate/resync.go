package replicate

import (
	"context"
	"errors"
	"fmt"

	"github.com/hourglass-io/hourglass/tsstore"
)

var errNoSource = errors.New("no healthy, caught-up replica to re-sync from")

// resyncChunk is the most cells one re-sync write carries.
const resyncChunk = 10_000

// resync copies the stale range of l (every cell of its metrics in its time
// range) from a healthy replica that has applied the writes of the range,
// the primary first. Cells are idempotent, so copying more than was missed
// is harmless, and a re-sync interrupted by a crash is simply redone.
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

	src := l.s.resyncSource(l, st.MaxSeq)
	if src == nil {
		return errNoSource
	}
	l.s.log.Info("replicate: re-sync started", "replica", l.name, "from_replica", src.name, "from", st.From, "to", st.To, "metrics", len(st.Metrics))
	epoch := l.s.epoch.Load()
	win := l.s.opts.ResyncWindow.Milliseconds()
	var copied int
	for _, m := range st.Metrics {
		for from := st.From; from < st.To; from += win {
			cells, err := src.store.Cells(ctx, tsstore.Selector{Metric: m, From: from, To: min(from+win, st.To)})
			if err != nil {
				return fmt.Errorf("re-sync from %s: %w", src.name, err)
			}
			for len(cells) > 0 {
				n := min(len(cells), resyncChunk)
				if err := l.apply(ctx, epoch, cells[:n]); err != nil {
					return fmt.Errorf("re-sync: %w", err)
				}
				copied += n
				cells = cells[n:]
			}
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.staleGen != gen {
		return nil // more hints were dropped meanwhile: go again
	}
	l.stale = nil
	l.failing = false
	l.notifyLocked()
	if err := l.s.setStale(l.name, nil); err != nil {
		l.s.log.Error("replicate: cannot persist the end of a re-sync", "replica", l.name, "err", err)
	}
	l.s.log.Info("replicate: re-sync done", "replica", l.name, "from_replica", src.name, "cells", copied)
	return nil
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
