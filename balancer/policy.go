package balancer

import (
	crand "crypto/rand"
	"encoding/binary"
	"sync"
	"sync/atomic"
)

// Policy chooses among the usable backends. The policies are RoundRobin,
// WeightedRoundRobin, LeastConnections, PeakEWMA and ConsistentHash; a
// Policy value may be shared by several balancers.
type Policy interface {
	// Name returns the policy's name, such as "round_robin".
	Name() string
	// newPicker returns the picker for one snapshot of usable endpoints.
	newPicker(eps []*endpoint, cfg *pickConfig) picker
}

// picker chooses among the endpoints of one view. pick returns an index
// into them, or -1 when allow (nil = all) rejects every endpoint. It is
// safe for concurrent use.
type picker interface {
	pick(key string, now int64, allow func(int) bool) int
}

// pickConfig is the balancer-wide state pickers share.
type pickConfig struct {
	rng       rng
	total     atomic.Int64 // requests in flight over all backends
	slowStart int64        // ns; 0 = none
	minFactor float64
}

// factor returns the share of its weight e has at now: below 1 during slow
// start.
func (c *pickConfig) factor(e *endpoint, now int64) float64 {
	if c.slowStart == 0 {
		return 1
	}
	s := e.slowStartAt.Load()
	if s == 0 || now >= s+c.slowStart {
		return 1
	}
	f := float64(now-s) / float64(c.slowStart)
	return max(f, c.minFactor)
}

// rng is a lock-free splitmix64 generator: deterministic for one goroutine,
// safe (if not reproducible) for many.
type rng struct{ state atomic.Uint64 }

func (r *rng) next() uint64 {
	z := r.state.Add(0x9e3779b97f4a7c15)
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// intn returns a number in [0, n) (n > 0).
func (r *rng) intn(n int) int { return int((r.next() >> 32) * uint64(n) >> 32) }

// float returns a number in [0, 1).
func (r *rng) float() float64 { return float64(r.next()>>11) / (1 << 53) }

func randomSeed() uint64 {
	var b [8]byte
	_, _ = crand.Read(b[:])
	return binary.LittleEndian.Uint64(b[:]) | 1
}

// RoundRobin returns the policy that takes the usable backends in turn,
// ignoring weights. A backend in slow start is skipped with probability
// 1 - its weight factor, so it ramps up too.
func RoundRobin() Policy { return roundRobin{} }

type roundRobin struct{}

func (roundRobin) Name() string { return "round_robin" }

func (roundRobin) newPicker(eps []*endpoint, cfg *pickConfig) picker {
	p := &rrPicker{eps: eps, cfg: cfg}
	if len(eps) > 0 {
		// Start each view at a random place so that many balancers do not
		// move in lockstep.
		p.next.Store(uint64(cfg.rng.intn(len(eps))))
	}
	return p
}

type rrPicker struct {
	eps  []*endpoint
	cfg  *pickConfig
	next atomic.Uint64
}

func (p *rrPicker) pick(_ string, now int64, allow func(int) bool) int {
	n := uint64(len(p.eps))
	start := p.next.Add(1) - 1
	first := -1
	for k := range n {
		i := int((start + k) % n)
		if allow != nil && !allow(i) {
			continue
		}
		if first < 0 {
			first = i
		}
		if f := p.cfg.factor(p.eps[i], now); f < 1 && p.cfg.rng.float() >= f {
			continue
		}
		return i
	}
	return first
}

// WeightedRoundRobin returns nginx's smooth weighted round robin: each pick
// adds every backend's weight to its running score, takes the highest
// score and subtracts the total weight from it. Over W picks (W = sum of
// weights) each backend gets exactly its weight, interleaved (weights 5,1,1
// give a a b a c a a, not a a a a a b c). Picks are serialised by a mutex.
func WeightedRoundRobin() Policy { return weightedRoundRobin{} }

type weightedRoundRobin struct{}

func (weightedRoundRobin) Name() string { return "weighted_round_robin" }

func (weightedRoundRobin) newPicker(eps []*endpoint, cfg *pickConfig) picker {
	return &wrrPicker{eps: eps, cfg: cfg, cur: make([]float64, len(eps))}
}

type wrrPicker struct {
	eps []*endpoint
	cfg *pickConfig
	mu  sync.Mutex // guards cur
	cur []float64
}

func (p *wrrPicker) pick(_ string, now int64, allow func(int) bool) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	best, total := -1, 0.0
	for i, e := range p.eps {
		if allow != nil && !allow(i) {
			continue
		}
		w := float64(e.weight) * p.cfg.factor(e, now)
		p.cur[i] += w
		total += w
		if best < 0 || p.cur[i] > p.cur[best] {
			best = i
		}
	}
	if best >= 0 {
		p.cur[best] -= total
	}
	return best
}

// LeastConnections returns the policy that picks the backend with the
// fewest requests in flight per unit of weight ((in flight + 1) / weight,
// the weight reduced during slow start), breaking ties at random. It scans
// all usable backends: O(n) per pick.
func LeastConnections() Policy { return leastConnections{} }

type leastConnections struct{}

func (leastConnections) Name() string { return "least_connections" }

func (leastConnections) newPicker(eps []*endpoint, cfg *pickConfig) picker {
	return &lcPicker{eps: eps, cfg: cfg}
}

type lcPicker struct {
	eps []*endpoint
	cfg *pickConfig
}

func (p *lcPicker) pick(_ string, now int64, allow func(int) bool) int {
	best, ties := -1, 0
	var bestScore float64
	for i, e := range p.eps {
		if allow != nil && !allow(i) {
			continue
		}
		score := float64(e.inflight.Load()+1) / (float64(e.weight) * p.cfg.factor(e, now))
		switch {
		case best < 0 || score < bestScore:
			best, bestScore, ties = i, score, 1
		case score == bestScore:
			ties++
			if p.cfg.rng.intn(ties) == 0 {
				best = i
			}
		}
	}
	return best
}
