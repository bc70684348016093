package writeback

import (
	"context"
	"runtime"
	"sync"
	"time"

	"github.com/hourglass-io/hourglass/tsstore"
)

// Admit waits until the caller may start a write and returns the function
// that ends it (call it when the write's work is done; later calls do
// nothing). While no flush runs, every write starts at once. While flush
// work runs (a flush, or an archive step still running after its flush),
// at most Options.FlushWriters writes run at once, admitted in the order
// they came: a flush that competes freely with every busy writer gets only
// its share of the goroutines and runs longer, and its CPU a point, not
// the write rate, bounds the rate a server can sustain. Admit fails with
// ctx's error, or at once with tsstore.ErrBackPressure when
// Options.FlushWaiters writes wait already.
//
// Admission is cooperative: Write does not call Admit. Callers that do
// work of their own per write call it before that work (httpapi before
// parsing a request's body, amqpsource before decoding a delivery), so
// that the bound covers it.
func (e *Engine) Admit(ctx context.Context) (release func(), err error) {
	return e.admission.admit(ctx, &e.stats)
}

// admission bounds the writes running at once while flush work runs
// (busy > 0); see Engine.Admit.
type admission struct {
	limit      int // the bound while busy; 0 means none
	maxWaiting int // the most writes waiting; 0 means no cap

	mu     sync.Mutex // guards busy, active and waiting
	busy   int        // flushes and archive steps running
	active int        // writes admitted and not yet released
	// waiting holds the writes waiting for a place, oldest first. A
	// place freed while busy goes to the oldest; the end of the flush
	// work admits them all.
	waiting []*admitWaiter
}

// admitWaiter is a write waiting in Admit: admitted is closed when it has
// a place (counted in active).
type admitWaiter struct {
	admitted chan struct{}
}

// flushWaiters returns the cap Options.FlushWaiters asks for: 0 means 64
// per GOMAXPROCS at New; a negative value means none.
func flushWaiters(n int) int {
	switch {
	case n < 0:
		return 0
	case n == 0:
		return 64 * runtime.GOMAXPROCS(0)
	}
	return n
}

// flushWriters returns the bound Options.FlushWriters asks for: 0 means
// half of GOMAXPROCS at New, at least 1; a negative value means none.
func flushWriters(n int) int {
	switch {
	case n < 0:
		return 0
	case n == 0:
		return max(1, runtime.GOMAXPROCS(0)/2)
	}
	return n
}

func (a *admission) admit(ctx context.Context, stats *engineStats) (func(), error) {
	if a.limit == 0 { // no bound: nothing to count (limit is set once, in New)
		return func() {}, nil
	}
	a.mu.Lock()
	if a.busy == 0 || a.active < a.limit && len(a.waiting) == 0 {
		a.active++
		a.mu.Unlock()
		return a.releaser(), nil
	}
	if a.maxWaiting > 0 && len(a.waiting) >= a.maxWaiting {
		a.mu.Unlock()
		stats.admitRefused.Add(1)
		return nil, tsstore.Errorf(tsstore.ErrBackPressure,
			"writeback: %d writes wait already for the flush to end (Options.FlushWaiters); retry later", a.maxWaiting)
	}
	w := &admitWaiter{admitted: make(chan struct{})}
	a.waiting = append(a.waiting, w)
	a.mu.Unlock()
	stats.admitWaits.Add(1)
	start := time.Now()
	defer func() { stats.admitWaitNanos.Add(int64(time.Since(start))) }()
	select {
	case <-w.admitted:
		return a.releaser(), nil
	case <-ctx.Done():
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	select {
	case <-w.admitted: // a place came with the end of ctx: pass it on
		a.releaseLocked()
	default:
		for i, x := range a.waiting {
			if x == w {
				a.waiting = append(a.waiting[:i], a.waiting[i+1:]...)
				break
			}
		}
	}
	return nil, ctx.Err()
}

// releaser returns the function that ends an admitted write, once.
func (a *admission) releaser() func() {
	var once sync.Once
	return func() {
		once.Do(func() {
			a.mu.Lock()
			a.releaseLocked()
			a.mu.Unlock()
		})
	}
}

// releaseLocked ends an admitted write: its place goes to the oldest
// waiter, or is freed. (There are waiters only while busy: end admits
// them all.)
func (a *admission) releaseLocked() {
	if len(a.waiting) > 0 && a.active <= a.limit {
		w := a.waiting[0]
		a.waiting = a.waiting[1:]
		close(w.admitted) // the place passes on: active stays
		return
	}
	a.active--
}

// start marks flush work running until the matching end.
func (a *admission) start() {
	a.mu.Lock()
	a.busy++
	a.mu.Unlock()
}

// end ends what start began; when the last flush work ends, every waiting
// write is admitted.
func (a *admission) end() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.busy--
	if a.busy > 0 {
		return
	}
	for _, w := range a.waiting {
		a.active++
		close(w.admitted)
	}
	a.waiting = nil
}

// flushing reports flush work running.
func (a *admission) flushing() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.busy > 0
}
