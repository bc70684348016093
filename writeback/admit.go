package writeback

import (
	"context"
	"runtime"
	"sync"
	"time"
)

// Admit waits until the caller may start a write and returns the function
// that ends it (call it once, when the write's work is done). While no
// flush runs, every write starts at once. While a flush or the archive
// step it started runs, at most Options.FlushWriters writes run at once,
// so that the flush keeps the rest of the CPU and ends within its budget
// when ingest alone would fill the machine: a flush that competes freely
// with every busy writer gets only its share of the goroutines, and its
// speed, not the write rate, bounds the rate a server can sustain. Admit
// fails only with ctx's error.
//
// Admission is cooperative: Write does not call Admit. Callers that do
// work of their own per write (httpapi decodes a request's body) call it
// before that work, so that the bound covers it.
func (e *Engine) Admit(ctx context.Context) (release func(), err error) {
	return e.gate.admit(ctx, &e.stats)
}

// gate bounds the writes admitted at once while flush work runs (busy >
// 0); see Engine.Admit.
type gate struct {
	limit int // the bound while busy; 0 means none

	mu     sync.Mutex
	busy   int // flushes and archive steps running
	active int // writes admitted and not yet released
	// wake is closed, and replaced, when a waiter may be admitted: on a
	// release, and when the last flush work ends.
	wake chan struct{}
}

// flushWriters returns the bound Options.FlushWriters asks for: 0 means
// half of GOMAXPROCS, at least 1; a negative value means none.
func flushWriters(n int) int {
	switch {
	case n < 0:
		return 0
	case n == 0:
		return max(1, runtime.GOMAXPROCS(0)/2)
	}
	return n
}

func (g *gate) admit(ctx context.Context, stats *engineStats) (func(), error) {
	var waited time.Time
	defer func() {
		if !waited.IsZero() {
			stats.admitWaitNanos.Add(int64(time.Since(waited)))
		}
	}()
	for {
		g.mu.Lock()
		if g.limit == 0 || g.busy == 0 || g.active < g.limit {
			g.active++
			g.mu.Unlock()
			var once sync.Once
			return func() { once.Do(g.release) }, nil
		}
		if g.wake == nil {
			g.wake = make(chan struct{})
		}
		wake := g.wake
		g.mu.Unlock()
		if waited.IsZero() {
			waited = time.Now()
			stats.admitWaits.Add(1)
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func (g *gate) release() {
	g.mu.Lock()
	g.active--
	g.wakeLocked()
	g.mu.Unlock()
}

// enter marks flush work running until the function it returns is called.
func (g *gate) enter() (leave func()) {
	g.mu.Lock()
	g.busy++
	g.mu.Unlock()
	return func() {
		g.mu.Lock()
		g.busy--
		if g.busy == 0 {
			g.wakeLocked()
		}
		g.mu.Unlock()
	}
}

// flushing reports flush work running.
func (g *gate) flushing() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.busy > 0
}

// wakeLocked lets every waiter try again (they are few: the writes beyond
// the bound).
func (g *gate) wakeLocked() {
	if g.wake != nil {
		close(g.wake)
		g.wake = nil
	}
}
