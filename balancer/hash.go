package balancer

import (
	"math"
	"slices"
	"strconv"

	"github.com/cespare/xxhash/v2"
)

// Defaults of HashOptions.
const (
	DefaultLoadFactor   = 1.25
	DefaultVirtualNodes = 100
)

// HashOptions configures ConsistentHash. A nil *HashOptions means the
// defaults.
type HashOptions struct {
	// LoadFactor is c of consistent hashing with bounded loads: a backend
	// takes a key only while its requests in flight are below
	// ceil(c × (all in flight + 1) × its weight share); otherwise the key
	// walks on along the ring. 0 means DefaultLoadFactor (1.25, the value
	// Vimeo and HAProxy use); a negative value means no bound (plain ring
	// hash). Values in (0, 1] are raised to 1.
	LoadFactor float64
	// VirtualNodes is the number of points per unit of weight each backend
	// has on the ring; 0 means DefaultVirtualNodes. More points spread
	// keys more evenly and cost memory and rebuild time.
	VirtualNodes int
}

// ConsistentHash returns consistent hashing with bounded load for key
// affinity: a key (a merchant) goes to the same backend while that backend
// is usable and not overloaded; a hot key spills over to the next backends
// on the ring. It uses a ring hash with virtual nodes (xxhash of
// "id#n"): removing one of N backends moves only that backend's keys,
// about 1/N of them, and the bounded-load walk of Mirrokni, Thorup and
// Zadimoghaddam ("Consistent Hashing with Bounded Loads", 2018) is defined
// on the ring. A pick with an empty key goes to a random point of the ring.
func ConsistentHash(opts *HashOptions) Policy {
	var o HashOptions
	if opts != nil {
		o = *opts
	}
	c := o.LoadFactor
	switch {
	case c == 0:
		c = DefaultLoadFactor
	case c < 0:
		c = math.Inf(1)
	case c < 1:
		c = 1
	}
	return &consistentHash{c: c, vnodes: orInt(o.VirtualNodes, DefaultVirtualNodes)}
}

type consistentHash struct {
	c      float64
	vnodes int
}

func (h *consistentHash) Name() string { return "consistent_hash" }

type ringPoint struct {
	hash uint64
	idx  int32
}

func (h *consistentHash) newPicker(eps []*endpoint, cfg *pickConfig) picker {
	p := &ringPicker{eps: eps, cfg: cfg, c: h.c}
	for i, e := range eps {
		p.weight += float64(e.weight)
		n := e.weight * h.vnodes
		buf := make([]byte, 0, len(e.id)+8)
		for v := range n {
			buf = strconv.AppendInt(append(append(buf[:0], e.id...), '#'), int64(v), 10)
			p.points = append(p.points, ringPoint{hash: xxhash.Sum64(buf), idx: int32(i)})
		}
	}
	slices.SortFunc(p.points, func(a, b ringPoint) int {
		switch {
		case a.hash < b.hash:
			return -1
		case a.hash > b.hash:
			return 1
		}
		return int(a.idx - b.idx)
	})
	return p
}

type ringPicker struct {
	eps    []*endpoint
	cfg    *pickConfig
	c      float64
	weight float64 // sum of weights
	points []ringPoint
}

func (p *ringPicker) pick(key string, now int64, allow func(int) bool) int {
	n := len(p.points)
	if n == 0 {
		return -1
	}
	var start int
	if key == "" {
		start = p.cfg.rng.intn(n)
	} else {
		h := xxhash.Sum64String(key)
		start, _ = slices.BinarySearchFunc(p.points, h, func(rp ringPoint, h uint64) int {
			switch {
			case rp.hash < h:
				return -1
			case rp.hash > h:
				return 1
			}
			return 0
		})
	}
	bounded := !math.IsInf(p.c, 1)
	total := float64(p.cfg.total.Load() + 1)
	first := -1
	for k := range n {
		i := int(p.points[(start+k)%n].idx)
		if allow != nil && !allow(i) {
			continue
		}
		if first < 0 {
			first = i
		}
		if !bounded {
			return i
		}
		e := p.eps[i]
		capacity := math.Ceil(p.c * total * float64(e.weight) * p.cfg.factor(e, now) / p.weight)
		if float64(e.inflight.Load()) < capacity {
			return i
		}
	}
	// Every allowed backend is at its bound (possible only when allow
	// excludes most of them, or during slow start): keep affinity.
	return first
}
