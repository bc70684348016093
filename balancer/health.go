package balancer

import (
	"context"
	"sync"
	"time"
)

// checkLoop runs a round of active checks every interval until ctx ends.
func (b *Balancer[B]) checkLoop(ctx context.Context) {
	defer b.wg.Done()
	t := time.NewTicker(b.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			b.CheckHealth(ctx)
		}
	}
}

// CheckHealth runs one round of active checks now: it probes every
// registered backend concurrently (each bounded by CheckTimeout) and waits
// for all of them, then applies the rise and fall thresholds. It does
// nothing without Options.Probe. The balancer's own goroutine calls it every
// CheckInterval; call it directly when CheckInterval is negative, or to
// react at once (tests, a deploy hook).
func (b *Balancer[B]) CheckHealth(ctx context.Context) {
	if b.probe == nil {
		return
	}
	members := b.view.Load().members
	errs := make([]error, len(members))
	var wg sync.WaitGroup
	for i, m := range members {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pctx, cancel := context.WithTimeout(ctx, b.timeout)
			defer cancel()
			errs[i] = b.probe(pctx, m.value)
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		return // canceled probes say nothing about the backends
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	changed := false
	now := b.now().UnixNano()
	for i, m := range members {
		if m.removed {
			continue
		}
		if err := errs[i]; err != nil {
			m.probeErr = err.Error()
			m.okRun, m.failRun = 0, m.failRun+1
			if m.healthy && m.failRun >= b.fall {
				m.healthy, changed = false, true
			}
			continue
		}
		m.probeErr = ""
		m.okRun, m.failRun = m.okRun+1, 0
		if !m.healthy && m.okRun >= b.rise {
			m.healthy, changed = true, true
			if b.cfg.slowStart > 0 {
				m.slowStartAt.Store(now)
			}
		}
	}
	if changed {
		b.rebuild(now)
	}
}
