// Package gate tracks the calls in progress of something that can be
// closed, so that Close can wait for them and later calls can be refused.
package gate

import "sync"

// Gate counts calls in progress. The zero value is open. A Gate must not
// be copied after first use.
type Gate struct {
	mu     sync.Mutex
	idle   sync.Cond // signalled when active drops to 0
	closed bool
	active int
}

// Enter starts a call; it reports false, and starts nothing, once Close
// has begun. Every successful Enter must be followed by one Leave.
func (g *Gate) Enter() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return false
	}
	g.active++
	return true
}

// Leave ends a call started by Enter.
func (g *Gate) Leave() {
	g.mu.Lock()
	g.active--
	if g.active == 0 && g.idle.L != nil {
		g.idle.Broadcast()
	}
	g.mu.Unlock()
}

// Close refuses new calls and waits for those in progress. It reports
// false when the Gate was closed before (the caller then has nothing left
// to release).
func (g *Gate) Close() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return false
	}
	g.closed = true
	g.idle.L = &g.mu
	for g.active > 0 {
		g.idle.Wait()
	}
	return true
}
