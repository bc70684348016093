package balancer

import (
	"math"
	"time"
)

// Defaults of EWMAOptions.
const (
	DefaultDecay          = 10 * time.Second
	DefaultFailurePenalty = 1 * time.Second
)

// EWMAOptions configures PeakEWMA. A nil *EWMAOptions means the defaults.
type EWMAOptions struct {
	// Decay is the time constant of the moving average: a sample's weight
	// falls to 1/e after Decay. 0 means DefaultDecay (Finagle's and
	// Linkerd's 10 s).
	Decay time.Duration
	// FailurePenalty is the latency a failed request counts as, at least:
	// a backend that fails fast must not look fast. 0 means
	// DefaultFailurePenalty.
	FailurePenalty time.Duration
}

type ewmaConfig struct {
	tau     float64 // ns
	penalty time.Duration
}

// PeakEWMA returns power of two choices over a peak-sensitive moving average
// of latency, as in Finagle and Linkerd: each pick samples two distinct
// usable backends at random and takes the one with the lower cost
//
//	cost = latency estimate × (in flight + 1) / weight
//
// The estimate jumps to any sample above it (the peak) and decays towards
// lower samples with time constant Decay; while a backend gets no samples
// its estimate decays towards zero, so a backend that was slow is probed
// again after a while. A failure counts as a sample of at least
// FailurePenalty. A backend without samples costs 0 when idle and a large
// penalty per request in flight otherwise (Finagle's rule), so new backends
// are tried at once but not flooded.
func PeakEWMA(opts *EWMAOptions) Policy {
	var o EWMAOptions
	if opts != nil {
		o = *opts
	}
	return &peakEWMA{cfg: ewmaConfig{
		tau:     float64(orDuration(o.Decay, DefaultDecay)),
		penalty: orDuration(o.FailurePenalty, DefaultFailurePenalty),
	}}
}

type peakEWMA struct{ cfg ewmaConfig }

func (p *peakEWMA) Name() string { return "p2c_peak_ewma" }

func (p *peakEWMA) newPicker(eps []*endpoint, cfg *pickConfig) picker {
	return &p2cPicker{eps: eps, cfg: cfg, ewma: &p.cfg}
}

// observe folds a latency sample (ns) taken at now into e's estimate.
func (e *endpoint) observe(rtt float64, now int64, c *ewmaConfig) {
	e.ewmaMu.Lock()
	defer e.ewmaMu.Unlock()
	prev := math.Float64frombits(e.cost.Load())
	var next float64
	if rtt > prev {
		next = rtt
	} else {
		td := float64(max(now-e.stamp.Load(), 0))
		w := math.Exp(-td / c.tau)
		next = prev*w + rtt*(1-w)
	}
	e.cost.Store(math.Float64bits(next))
	e.stamp.Store(now)
}

// currentCost returns e's latency estimate (ns) decayed to now.
func (e *endpoint) currentCost(now int64, c *ewmaConfig) float64 {
	cost := math.Float64frombits(e.cost.Load())
	if cost == 0 {
		return 0
	}
	if td := now - e.stamp.Load(); td > 0 {
		cost *= math.Exp(-float64(td) / c.tau)
	}
	return cost
}

type p2cPicker struct {
	eps  []*endpoint
	cfg  *pickConfig
	ewma *ewmaConfig
}

// unknownPenalty is the cost per request in flight of a backend with no
// samples yet.
const unknownPenalty = float64(math.MaxInt32)

func (p *p2cPicker) cost(e *endpoint, now int64) float64 {
	pending := float64(e.inflight.Load())
	c := e.currentCost(now, p.ewma)
	if c == 0 && pending > 0 {
		return unknownPenalty + pending
	}
	return c * (pending + 1) / (float64(e.weight) * p.cfg.factor(e, now))
}

func (p *p2cPicker) pick(_ string, now int64, allow func(int) bool) int {
	n := len(p.eps)
	if allow != nil {
		cand := make([]int, 0, n)
		for i := range n {
			if allow(i) {
				cand = append(cand, i)
			}
		}
		switch len(cand) {
		case 0:
			return -1
		case 1:
			return cand[0]
		}
		i, j := p.two(len(cand))
		return p.better(cand[i], cand[j], now)
	}
	if n == 1 {
		return 0
	}
	i, j := p.two(n)
	return p.better(i, j, now)
}

// two returns two distinct indexes in [0, n), n >= 2.
func (p *p2cPicker) two(n int) (int, int) {
	i := p.cfg.rng.intn(n)
	j := p.cfg.rng.intn(n - 1)
	if j >= i {
		j++
	}
	return i, j
}

func (p *p2cPicker) better(i, j int, now int64) int {
	if p.cost(p.eps[j], now) < p.cost(p.eps[i], now) {
		return j
	}
	return i
}
