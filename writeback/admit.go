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
// the write rate, bounds the rate a server can sustain. Flush work that
// makes no progress for Options.FlushStall (a store or an archive that
// hangs: a flush waiting on it needs no CPU) bounds nothing until it
// progresses again. Admit fails with ctx's error, or at once with
// tsstore.ErrBackPressure when Options.FlushWaiters writes wait already.
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
	limit      int              // the bound while busy; 0 means none
	maxWaiting int              // the most writes waiting; 0 means no cap
	stall      time.Duration    // no progress for this long lifts the bound; 0 means never
	stalled    func()           // called under mu once a stall lifts the bound
	now        func() time.Time // the engine's clock, for stalls

	mu     sync.Mutex // guards the fields below
	busy   int        // flushes and archive steps running
	active int        // writes admitted and not yet released
	// waiting holds the writes waiting for a place, oldest first. A
	// place freed while busy goes to the oldest; the end of the flush
	// work, or a stall, admits them all.
	waiting []*admitWaiter
	// progressAt is when flush work last made progress (or began);
	// timer, while writes wait, fires when they would have waited
	// through a stall; lifted reports the bound lifted by the current
	// stall (reported once).
	progressAt time.Time
	timer      *time.Timer
	lifted     bool
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

// flushStall returns the stall Options.FlushStall asks for: 0 means
// DefaultFlushStall; a negative value means never.
func flushStall(d time.Duration) time.Duration {
	switch {
	case d < 0:
		return 0
	case d == 0:
		return DefaultFlushStall
	}
	return d
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
	if a.stalledLocked(a.now()) {
		a.admitAllLocked() // the older first (their timer may not have fired yet)
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
	if a.stall > 0 && a.timer == nil {
		a.armLocked(a.progressAt.Add(a.stall).Sub(a.now()))
	}
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
	if a.busy == 0 {
		a.progressAt, a.lifted = a.now(), false
	}
	a.busy++
	a.mu.Unlock()
}

// progress records that flush work progressed (a chunk of cells written,
// a segment appended): a bound a stall lifted holds again.
func (a *admission) progress() {
	if a.stall <= 0 {
		return
	}
	a.mu.Lock()
	a.progressAt, a.lifted = a.now(), false
	a.mu.Unlock()
}

// stalledLocked reports whether flush work has made no progress for
// a.stall at now; the first time in a stall it reports it (stalled).
func (a *admission) stalledLocked(now time.Time) bool {
	if a.stall <= 0 || now.Sub(a.progressAt) < a.stall {
		return false
	}
	if !a.lifted {
		a.lifted = true
		if a.stalled != nil {
			a.stalled()
		}
	}
	return true
}

// armLocked sets the timer that checks for a stall in d.
func (a *admission) armLocked(d time.Duration) {
	var t *time.Timer
	t = time.AfterFunc(d, func() {
		a.mu.Lock() // t is read under a.mu, so after it is set
		defer a.mu.Unlock()
		a.checkStallLocked(t)
	})
	a.timer = t
}

// checkStallLocked runs when waiting writes would have waited through a
// stall (the timer t): if flush work made no progress since, it admits
// them all; else it waits for the next point a stall could begin.
func (a *admission) checkStallLocked(t *time.Timer) {
	if a.timer != t {
		return // stopped at the end of the flush work
	}
	a.timer = nil
	if len(a.waiting) == 0 {
		return
	}
	now := a.now()
	if !a.stalledLocked(now) {
		a.armLocked(a.progressAt.Add(a.stall).Sub(now))
		return
	}
	a.admitAllLocked()
}

// admitAllLocked admits every waiting write.
func (a *admission) admitAllLocked() {
	for _, w := range a.waiting {
		a.active++
		close(w.admitted)
	}
	a.waiting = nil
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
	a.admitAllLocked()
	if a.timer != nil {
		a.timer.Stop()
		a.timer = nil
	}
}

// flushing reports flush work running.
func (a *admission) flushing() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.busy > 0
}
