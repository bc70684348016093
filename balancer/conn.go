package balancer

import (
	"time"
)

// Conn is one pick: the chosen backend and what the balancer needs to learn
// from the request sent to it. Complete it exactly once with Done, Report or
// Release; until then it counts as in flight (least connections, P2C and
// the bounded load of consistent hashing use that count). A Conn is a small
// value: copying it is fine, completing a copy as well as the original is
// not.
type Conn[B any] struct {
	b     *Balancer[B]
	m     *member[B]
	start time.Time
}

// Backend returns the picked backend's value.
func (c Conn[B]) Backend() B { return c.m.value }

// ID returns the picked backend's ID.
func (c Conn[B]) ID() string { return c.m.id }

// Done completes the pick, measuring its latency from the pick to now on
// the balancer's clock. A non-nil err counts as a failure of the backend
// (passive outlier detection, and a slow sample for peak EWMA); pass nil,
// or use Release, for outcomes that are not the backend's fault (an invalid
// query, a canceled request).
func (c Conn[B]) Done(err error) {
	now := c.b.now()
	c.b.report(c.m, err, now.Sub(c.start), now.UnixNano())
}

// Report completes the pick with an outcome and a latency measured by the
// caller (a simulation, a server-reported time).
func (c Conn[B]) Report(err error, latency time.Duration) {
	c.b.report(c.m, err, latency, c.b.now().UnixNano())
}

// Release completes the pick without telling anything about the backend:
// it is no longer in flight, and neither its latency estimate nor its
// failure count change.
func (c Conn[B]) Release() {
	c.m.inflight.Add(-1)
	c.b.cfg.total.Add(-1)
}

func (b *Balancer[B]) report(m *member[B], err error, latency time.Duration, now int64) {
	m.inflight.Add(-1)
	b.cfg.total.Add(-1)
	if b.ewma != nil {
		rtt := float64(max(latency, 0))
		if err != nil {
			rtt = max(rtt, float64(b.ewma.penalty))
		}
		m.observe(rtt, now, b.ewma)
	}
	if err == nil {
		if m.consecutive.Load() != 0 {
			m.consecutive.Store(0)
		}
		return
	}
	m.failures.Add(1)
	if b.consecutive > 0 && m.consecutive.Add(1) >= b.consecutive {
		b.eject(m, now)
	}
}

// eject takes m out of rotation after consecutive failures, unless that
// would eject more than the allowed share.
func (b *Balancer[B]) eject(m *member[B], now int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if m.removed || b.closed {
		return
	}
	if m.ejected && now < m.ejectedUntil {
		return
	}
	// Let ejections that ended take effect before counting.
	b.rebuild(now)
	ejected := 0
	for _, o := range b.members {
		if o.ejected {
			ejected++
		}
	}
	if limit := max(1, len(b.members)*b.maxEjectPct/100); ejected >= limit {
		return
	}
	if m.lastReturn != 0 && now-m.lastReturn >= b.maxEject {
		m.ejections = 0
	}
	m.ejections++
	m.ejectionsTotal++
	m.ejected = true
	m.ejectedUntil = now + min(b.baseEject*int64(m.ejections), b.maxEject)
	m.consecutive.Store(0)
	b.rebuild(now)
}
