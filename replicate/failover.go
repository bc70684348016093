package replicate

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hourglass-io/hourglass/tsstore"
)

// monitor runs the health checks (and failover decisions) every
// ProbeInterval and the background hint fsyncs every HintSyncInterval,
// until ctx ends.
func (s *Store) monitor(ctx context.Context) {
	defer s.wg.Done()
	syncT := time.NewTicker(s.opts.HintSyncInterval)
	defer syncT.Stop()
	var probeC <-chan time.Time
	if s.opts.ProbeInterval > 0 {
		t := time.NewTicker(s.opts.ProbeInterval)
		defer t.Stop()
		probeC = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-syncT.C:
			for _, l := range s.links {
				if err := l.sync(); err != nil {
					s.log.Error("replicate: fsync of hints failed", "replica", l.name, "err", err)
				}
			}
		case <-probeC:
			s.check(ctx)
		}
	}
}

// Check runs one round of health checks now and acts on it: replicas that
// pass are fenced at the Store's epoch when they are behind it and their
// appliers are woken (hint replay, re-sync); when the primary is unhealthy
// a caught-up standby is promoted (unless Options.NoFailover). The
// background monitor calls it every ProbeInterval; call it yourself when
// ProbeInterval is negative. It returns the error of a failed promotion
// attempt, if any.
func (s *Store) Check(ctx context.Context) error {
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return tsstore.Errorf(tsstore.ErrClosed, "replicate: check")
	}
	return s.check(ctx)
}

func (s *Store) check(ctx context.Context) error {
	s.bal.CheckHealth(ctx)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	healthy := make(map[string]bool)
	for _, st := range s.bal.Status() {
		healthy[st.ID] = st.Healthy
	}
	epoch := s.epoch.Load()
	for _, l := range s.links {
		h := healthy[l.name]
		l.mu.Lock()
		l.healthy = h
		work := h && (l.failing || len(l.pend) > 0 || l.stale != nil)
		if work {
			l.kicked = true
		}
		l.mu.Unlock()
		if h && l.fencer != nil && l.fencer.Epoch() < epoch {
			if err := l.fencer.Fence(ctx, epoch); err != nil {
				if errors.Is(err, ErrFenced) {
					s.setFenced(err)
				}
				s.log.Warn("replicate: cannot fence replica", "replica", l.name, "epoch", epoch, "err", err)
			} else {
				s.log.Info("replicate: fenced replica at the current epoch", "replica", l.name, "epoch", epoch)
			}
		}
		if work {
			l.kick()
		}
	}
	s.order.Lock()
	primary := s.primary
	s.order.Unlock()
	if healthy[primary.name] || s.opts.NoFailover || s.fenced.Load() != nil {
		return nil
	}
	// Fail over to the standby that is healthy, not stale, and has applied
	// every acknowledged write (the furthest ahead if several).
	acked := s.lastAcked.Load()
	var best *link
	var bestApplied uint64
	for _, l := range s.links {
		if l == primary || !healthy[l.name] {
			continue
		}
		l.mu.Lock()
		a, ok := l.appliedLocked(), l.stale == nil
		l.mu.Unlock()
		if ok && a >= acked && (best == nil || a > bestApplied) {
			best, bestApplied = l, a
		}
	}
	if best == nil {
		s.log.Warn("replicate: primary unhealthy and no standby is caught up yet", "primary", primary.name, "acked", acked)
		return nil
	}
	return s.promote(ctx, best, "the primary "+primary.name+" is unhealthy")
}

var errNotCaughtUp = errors.New("replica has not applied every acknowledged write")

// promote makes l the primary at a new epoch: the epoch and primary are
// persisted first, then the healthy replicas are fenced at it.
func (s *Store) promote(ctx context.Context, l *link, why string) error {
	s.order.Lock()
	if l == s.primary {
		s.order.Unlock()
		return nil
	}
	if a := l.appliedUpTo(); a < s.lastAcked.Load() {
		s.order.Unlock()
		return tsstore.Errorf(tsstore.ErrUnavailable, "replicate: promote %s: applied up to %d, acknowledged %d: %w", l.name, a, s.lastAcked.Load(), errNotCaughtUp)
	}
	old := s.primary
	epoch := s.epoch.Load() + 1
	s.stateMu.Lock()
	prev := s.state
	s.state.Epoch, s.state.Primary = epoch, l.name
	err := s.saveStateLocked()
	if err != nil {
		s.state = prev
	}
	s.stateMu.Unlock()
	if err != nil {
		s.order.Unlock()
		return fmt.Errorf("replicate: promote %s: persist the epoch: %w", l.name, err)
	}
	s.epoch.Store(epoch)
	s.primary = l
	s.order.Unlock()
	s.promotions.Add(1)
	s.log.Warn("replicate: promoted a new primary", "primary", l.name, "old", old.name, "epoch", epoch, "why", why)

	// Fence whoever answers, the new primary first; a replica that does
	// not answer is fenced by the first write or check that reaches it.
	var wg sync.WaitGroup
	for _, r := range s.links {
		if r.fencer == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			fctx, cancel := context.WithTimeout(ctx, s.opts.ProbeTimeout)
			defer cancel()
			if err := r.fencer.Fence(fctx, epoch); err != nil {
				s.log.Info("replicate: replica not fenced yet", "replica", r.name, "epoch", epoch, "err", err)
			}
		}()
	}
	wg.Wait()
	return nil
}

// FailBack makes the named replica the primary again (or any replica: it
// is an explicit switchover), at a new epoch. It waits, up to ctx, until
// the replica answers, is not stale and has applied every acknowledged
// write; failures of the wait are of kind tsstore.ErrUnavailable.
func (s *Store) FailBack(ctx context.Context, name string) error {
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return tsstore.Errorf(tsstore.ErrClosed, "replicate: fail back")
	}
	l := s.link(name)
	if l == nil {
		return tsstore.Errorf(tsstore.ErrInvalid, "replicate: fail back: no replica named %q", name)
	}
	if err := s.fencedErr(); err != nil {
		return err
	}
	for {
		pctx, cancel := context.WithTimeout(ctx, s.opts.ProbeTimeout)
		err := probe(pctx, l.store)
		cancel()
		if err != nil {
			return tsstore.Errorf(tsstore.ErrUnavailable, "replicate: fail back to %s: it does not answer: %w", name, err)
		}
		l.kick()
		l.mu.Lock()
		l.kicked = true
		ready := l.stale == nil && l.appliedLocked() >= s.lastAcked.Load()
		ch := l.changed
		l.mu.Unlock()
		if ready {
			err := s.promote(ctx, l, "fail-back")
			if !errors.Is(err, errNotCaughtUp) {
				return err
			}
			continue
		}
		select {
		case <-ctx.Done():
			return tsstore.Errorf(tsstore.ErrUnavailable, "replicate: fail back to %s: not caught up: %w", name, ctx.Err())
		case <-ch:
		case <-time.After(s.opts.RetryBackoff):
		}
	}
}
