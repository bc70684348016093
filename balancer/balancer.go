package balancer

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hourglass-io/hourglass/tsstore"
)

// Defaults of Options.
const (
	DefaultCheckInterval       = 5 * time.Second
	DefaultCheckTimeout        = 1 * time.Second
	DefaultRise                = 2
	DefaultFall                = 3
	DefaultConsecutiveFailures = 5
	DefaultBaseEjectionTime    = 30 * time.Second
	DefaultMaxEjectionTime     = 300 * time.Second
	DefaultMaxEjectionPercent  = 10
	DefaultPanicThreshold      = 50
	DefaultSlowStartMinPercent = 10
)

// Options configures a Balancer. A nil *Options means the defaults; every
// field documents its zero value.
type Options[B any] struct {
	// Name names the balancer in errors and metrics; "" means "balancer".
	Name string

	// Now is the clock used for latencies, ejection and slow start; nil
	// means time.Now. Tests and simulations inject a virtual clock.
	Now func() time.Time

	// Seed seeds the balancer's random choices (tie breaks, P2C samples);
	// 0 means a random seed. A fixed seed makes single-goroutine pick
	// sequences reproducible.
	Seed uint64

	// Probe, when set, is the active health check: it is called for every
	// backend each CheckInterval with a context that expires after
	// CheckTimeout, and a nil result means healthy. nil means no active
	// checks (every backend counts as healthy).
	Probe func(ctx context.Context, backend B) error
	// CheckInterval is the time between rounds of active checks run by the
	// balancer's own goroutine; 0 means DefaultCheckInterval; negative
	// means no background checks (call CheckHealth yourself).
	CheckInterval time.Duration
	// CheckTimeout bounds one probe; 0 means DefaultCheckTimeout.
	CheckTimeout time.Duration
	// Rise is the number of consecutive passed probes that make an
	// unhealthy backend healthy again; 0 means DefaultRise.
	Rise int
	// Fall is the number of consecutive failed probes that make a healthy
	// backend unhealthy; 0 means DefaultFall.
	Fall int

	// ConsecutiveFailures is the number of consecutive failed requests
	// (Conn.Done with a non-nil error) that eject a backend (passive outlier
	// detection); 0 means DefaultConsecutiveFailures; negative disables
	// ejection.
	ConsecutiveFailures int
	// BaseEjectionTime is how long a first ejection lasts; the n-th
	// ejection in a row lasts n times as long, up to MaxEjectionTime. 0
	// means DefaultBaseEjectionTime.
	BaseEjectionTime time.Duration
	// MaxEjectionTime caps an ejection. A backend that stayed in for
	// MaxEjectionTime after its last ejection starts again from
	// BaseEjectionTime. 0 means DefaultMaxEjectionTime.
	MaxEjectionTime time.Duration
	// MaxEjectionPercent caps the share of backends ejected at once (at
	// least one can always be ejected); 0 means DefaultMaxEjectionPercent.
	MaxEjectionPercent int

	// PanicThreshold is a percentage: when fewer than this share of the
	// registered backends are usable (healthy and not ejected), the
	// balancer ignores health and picks among all of them, as Envoy does,
	// rather than overloading the few left. 0 means DefaultPanicThreshold;
	// negative disables panic mode (picks then fail when none is usable).
	PanicThreshold int

	// SlowStart is the window over which a backend that joins (added while
	// others exist, healthy again, or back from ejection) ramps its weight
	// up linearly from SlowStartMinPercent to 100 %. 0 means no slow start.
	SlowStart time.Duration
	// SlowStartMinPercent is the weight a backend starts its slow start
	// with; 0 means DefaultSlowStartMinPercent.
	SlowStartMinPercent int
}

// Backend is a backend to register: a unique ID (an address, a replica
// name), the value picks hand out, and a weight.
type Backend[B any] struct {
	ID    string
	Value B
	// Weight is the backend's relative share for weighted policies
	// (smooth weighted round robin, consistent hashing, and the cost
	// divisor of least connections and P2C); 0 means 1.
	Weight int
}

// Status is a snapshot of one backend's state, for inspection and tests.
type Status struct {
	ID        string
	Weight    int
	Healthy   bool // by active checks (always true without Probe)
	Ejected   bool // by passive outlier detection
	Usable    bool // picks may choose it now (true for all in panic mode)
	SlowStart bool // ramping up its weight
	// EjectedUntil is when the current ejection ends (zero if not ejected).
	EjectedUntil   time.Time
	Ejections      int    // ejections in a row (the multiplier of the next one)
	InFlight       int64  // picked and not yet Done
	Picks          uint64 // picks since it was added
	Failures       uint64 // Done calls with a non-nil error
	EjectionsTotal uint64 // ejections since it was added
	// Latency is the peak-EWMA latency estimate (only with PeakEWMA).
	Latency time.Duration
	// LastProbeError is the error of the last failed probe ("" if it passed).
	LastProbeError string
}

// Balancer picks backends of type B by a Policy, tracking their health.
// Create one with New; it is safe for concurrent use. Picks read an
// immutable snapshot (copy on write, swapped atomically), so adding and
// removing backends never blocks or disturbs requests in flight.
type Balancer[B any] struct {
	name   string
	policy Policy
	cfg    *pickConfig
	now    func() time.Time
	ewma   *ewmaConfig // nil unless the policy uses latency

	probe               func(context.Context, B) error
	interval, timeout   time.Duration
	rise, fall          int
	consecutive         int32
	baseEject, maxEject int64
	maxEjectPct         int
	panicPct            int

	view atomic.Pointer[view[B]]

	mu      sync.Mutex   // guards members, closed and the health fields of every member
	members []*member[B] // sorted by ID
	closed  bool

	stop context.CancelFunc
	wg   sync.WaitGroup
}

// member is a registered backend.
type member[B any] struct {
	endpoint
	value B
}

// endpoint is the policy-visible, non-generic state of a backend.
type endpoint struct {
	id     string
	weight int

	inflight    atomic.Int64
	picks       atomic.Uint64
	failures    atomic.Uint64
	consecutive atomic.Int32
	slowStartAt atomic.Int64 // unix ns when slow start began; 0 = none

	ewmaMu sync.Mutex    // serialises updates of cost and stamp
	cost   atomic.Uint64 // float64 bits: peak-EWMA latency in ns
	stamp  atomic.Int64  // unix ns of the last cost update

	// Guarded by Balancer.mu.
	healthy        bool
	okRun, failRun int
	probeErr       string
	ejected        bool
	ejectedUntil   int64
	ejections      int
	ejectionsTotal uint64
	lastReturn     int64
	removed        bool
}

// view is an immutable snapshot of the balancer: what picks use.
type view[B any] struct {
	members []*member[B] // all registered
	usable  []*member[B] // what the policy chooses from
	picker  picker
	panic   bool
	expires int64 // unix ns when an ejection ends (rebuild then); 0 = never
	err     error // why nothing is usable, when usable is empty
}

// New returns a balancer with no backends that picks by policy (nil means
// RoundRobin()). If opts.Probe is set, its health-check goroutine runs
// until Close.
func New[B any](policy Policy, opts *Options[B]) *Balancer[B] {
	var o Options[B]
	if opts != nil {
		o = *opts
	}
	if policy == nil {
		policy = RoundRobin()
	}
	b := &Balancer[B]{
		name:        o.Name,
		policy:      policy,
		now:         o.Now,
		probe:       o.Probe,
		interval:    orDuration(o.CheckInterval, DefaultCheckInterval),
		timeout:     orDuration(o.CheckTimeout, DefaultCheckTimeout),
		rise:        orInt(o.Rise, DefaultRise),
		fall:        orInt(o.Fall, DefaultFall),
		consecutive: int32(orInt(o.ConsecutiveFailures, DefaultConsecutiveFailures)),
		baseEject:   int64(orDuration(o.BaseEjectionTime, DefaultBaseEjectionTime)),
		maxEject:    int64(orDuration(o.MaxEjectionTime, DefaultMaxEjectionTime)),
		maxEjectPct: orInt(o.MaxEjectionPercent, DefaultMaxEjectionPercent),
		panicPct:    orInt(o.PanicThreshold, DefaultPanicThreshold),
	}
	if b.name == "" {
		b.name = "balancer"
	}
	if b.now == nil {
		b.now = time.Now
	}
	if p, ok := policy.(*peakEWMA); ok {
		b.ewma = &p.cfg
	}
	b.cfg = &pickConfig{
		slowStart: int64(o.SlowStart),
		minFactor: float64(orInt(o.SlowStartMinPercent, DefaultSlowStartMinPercent)) / 100,
	}
	seed := o.Seed
	if seed == 0 {
		seed = randomSeed()
	}
	b.cfg.rng.state.Store(seed)
	b.mu.Lock()
	b.rebuild(b.now().UnixNano())
	b.mu.Unlock()
	if b.probe != nil && b.interval > 0 {
		ctx, cancel := context.WithCancel(context.Background())
		b.stop = cancel
		b.wg.Add(1)
		go b.checkLoop(ctx)
	}
	return b
}

func orDuration(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

func orInt(n, def int) int {
	if n == 0 {
		return def
	}
	return n
}

// Name returns the balancer's name.
func (b *Balancer[B]) Name() string { return b.name }

// Policy returns the balancer's policy.
func (b *Balancer[B]) Policy() Policy { return b.policy }

// Add registers backends. IDs must be new and weights not negative (errors
// of kind ErrInvalid, ErrConflict for a duplicate ID; nothing is added
// then). A backend added while others exist starts its slow start.
func (b *Balancer[B]) Add(backends ...Backend[B]) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return tsstore.Errorf(tsstore.ErrClosed, "%s: add", b.name)
	}
	seen := make(map[string]bool, len(backends))
	for _, nb := range backends {
		if nb.ID == "" {
			return tsstore.Errorf(tsstore.ErrInvalid, "%s: add: backend ID is empty", b.name)
		}
		if nb.Weight < 0 {
			return tsstore.Errorf(tsstore.ErrInvalid, "%s: add %q: weight %d is negative", b.name, nb.ID, nb.Weight)
		}
		if seen[nb.ID] || b.find(nb.ID) >= 0 {
			return tsstore.Errorf(tsstore.ErrConflict, "%s: add: backend %q is already registered", b.name, nb.ID)
		}
		seen[nb.ID] = true
	}
	now := b.now().UnixNano()
	startSlow := b.cfg.slowStart > 0 && len(b.members) > 0
	members := slices.Clone(b.members)
	for _, nb := range backends {
		m := &member[B]{value: nb.Value}
		m.id, m.weight, m.healthy = nb.ID, max(nb.Weight, 1), true
		if startSlow {
			m.slowStartAt.Store(now)
		}
		members = append(members, m)
	}
	slices.SortFunc(members, func(x, y *member[B]) int { return strings.Compare(x.id, y.id) })
	b.members = members
	b.rebuild(now)
	return nil
}

// Remove unregisters the backends with these IDs and reports how many were
// registered. Requests in flight on them finish normally; their Done only
// updates counters.
func (b *Balancer[B]) Remove(ids ...string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	members := slices.Clone(b.members)
	n := 0
	for _, id := range ids {
		if i := indexOf(members, id); i >= 0 {
			members[i].removed = true
			members = slices.Delete(members, i, i+1)
			n++
		}
	}
	if n > 0 && !b.closed {
		b.members = members
		b.rebuild(b.now().UnixNano())
	}
	return n
}

func (b *Balancer[B]) find(id string) int { return indexOf(b.members, id) }

func indexOf[B any](ms []*member[B], id string) int {
	i, ok := slices.BinarySearchFunc(ms, id, func(m *member[B], id string) int { return strings.Compare(m.id, id) })
	if !ok {
		return -1
	}
	return i
}

// Len returns the number of registered backends.
func (b *Balancer[B]) Len() int { return len(b.view.Load().members) }

// Status returns the state of every registered backend, sorted by ID.
func (b *Balancer[B]) Status() []Status {
	now := b.now()
	ns := now.UnixNano()
	v := b.current(ns)
	usable := make(map[*member[B]]bool, len(v.usable))
	for _, m := range v.usable {
		usable[m] = true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]Status, 0, len(b.members))
	for _, m := range b.members {
		s := Status{
			ID: m.id, Weight: m.weight, Healthy: m.healthy,
			Ejected:   m.ejected,
			Usable:    usable[m],
			SlowStart: b.cfg.factor(&m.endpoint, ns) < 1,
			Ejections: m.ejections, InFlight: m.inflight.Load(), Picks: m.picks.Load(),
			Failures: m.failures.Load(), EjectionsTotal: m.ejectionsTotal, LastProbeError: m.probeErr,
		}
		if m.ejected {
			s.EjectedUntil = time.Unix(0, m.ejectedUntil)
		}
		if b.ewma != nil {
			s.Latency = time.Duration(m.currentCost(ns, b.ewma))
		}
		out = append(out, s)
	}
	return out
}

// Panicking reports whether the balancer is in panic mode: too few
// backends are usable, so it picks among all of them.
func (b *Balancer[B]) Panicking() bool { return b.view.Load().panic }

// Close stops the health checks and waits for them; later picks fail with
// ErrClosed. Conns picked before may still be completed. Close returns nil.
func (b *Balancer[B]) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	b.view.Store(&view[B]{err: tsstore.Errorf(tsstore.ErrClosed, "%s: closed", b.name)})
	b.mu.Unlock()
	if b.stop != nil {
		b.stop()
	}
	b.wg.Wait()
	return nil
}

// rebuild makes a new view from the members at time now. b.mu is held.
func (b *Balancer[B]) rebuild(now int64) {
	if b.closed {
		return
	}
	v := &view[B]{members: b.members}
	unhealthy, ejected := 0, 0
	for _, m := range b.members {
		if m.ejected && now >= m.ejectedUntil {
			m.ejected = false
			m.lastReturn = m.ejectedUntil
			m.consecutive.Store(0)
			if b.cfg.slowStart > 0 {
				m.slowStartAt.Store(m.ejectedUntil)
			}
		}
		switch {
		case !m.healthy:
			unhealthy++
		case m.ejected:
			ejected++
		default:
			v.usable = append(v.usable, m)
		}
		if m.ejected && (v.expires == 0 || m.ejectedUntil < v.expires) {
			v.expires = m.ejectedUntil
		}
	}
	n := len(b.members)
	if b.panicPct > 0 && n > 0 && len(v.usable)*100 < b.panicPct*n {
		v.usable, v.panic = b.members, true
	}
	switch {
	case n == 0:
		v.err = tsstore.Errorf(tsstore.ErrUnavailable, "%s: no backends registered", b.name)
	case len(v.usable) > 0:
	case unhealthy == n:
		v.err = tsstore.Errorf(tsstore.ErrUnavailable, "%s: all %d backends are unhealthy", b.name, n)
	case ejected == n:
		v.err = tsstore.Errorf(tsstore.ErrUnavailable, "%s: all %d backends are ejected after failures", b.name, n)
	default:
		v.err = tsstore.Errorf(tsstore.ErrUnavailable, "%s: no usable backend: %d unhealthy, %d ejected after failures", b.name, unhealthy, ejected)
	}
	eps := make([]*endpoint, len(v.usable))
	for i, m := range v.usable {
		eps[i] = &m.endpoint
	}
	v.picker = b.policy.newPicker(eps, b.cfg)
	b.view.Store(v)
}

// current returns the view valid at now, rebuilding it when an ejection
// has ended.
func (b *Balancer[B]) current(now int64) *view[B] {
	v := b.view.Load()
	if v.expires == 0 || now < v.expires {
		return v
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if v = b.view.Load(); v.expires != 0 && now >= v.expires {
		b.rebuild(now)
		v = b.view.Load()
	}
	return v
}

// Pick chooses a backend for a request with the given affinity key (used
// by ConsistentHash; other policies ignore it). The returned Conn must be
// completed exactly once with Done, Report or Release. When no backend is
// usable the error is of kind ErrUnavailable and says why (none
// registered, all unhealthy, all ejected); after Close it is ErrClosed.
func (b *Balancer[B]) Pick(key string) (Conn[B], error) {
	return b.pick(key, nil)
}

// PickIf is Pick restricted to the usable backends for which ok returns
// true (for example: not yet tried by this request, or a replica that has
// caught up). When ok rejects every usable backend the error is of kind
// ErrUnavailable.
func (b *Balancer[B]) PickIf(key string, ok func(id string, backend B) bool) (Conn[B], error) {
	return b.pick(key, ok)
}

func (b *Balancer[B]) pick(key string, ok func(string, B) bool) (Conn[B], error) {
	t := b.now()
	now := t.UnixNano()
	v := b.current(now)
	if len(v.usable) == 0 {
		return Conn[B]{}, v.err
	}
	var allow func(int) bool
	if ok != nil {
		allow = func(i int) bool { m := v.usable[i]; return ok(m.id, m.value) }
	}
	i := v.picker.pick(key, now, allow)
	if i < 0 {
		return Conn[B]{}, tsstore.Errorf(tsstore.ErrUnavailable, "%s: none of the %d usable backends is eligible", b.name, len(v.usable))
	}
	m := v.usable[i]
	m.inflight.Add(1)
	b.cfg.total.Add(1)
	m.picks.Add(1)
	return Conn[B]{b: b, m: m, start: t}, nil
}

// String describes the balancer for logs.
func (b *Balancer[B]) String() string {
	return fmt.Sprintf("%s(%s, %d backends)", b.name, b.policy.Name(), b.Len())
}
