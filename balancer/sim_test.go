package balancer_test

import (
	"container/heap"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/hourglass-io/hourglass/balancer"
)

// A deterministic discrete-event simulation: no real time passes. N
// upstreams, each a FIFO queue in front of `workers` parallel servers with
// exponential service times (mean 10 ms). From slowAt on, upstream 0 is 10x
// slower; upstream 1 fails every request after 1 ms. Requests arrive as a
// Poisson stream at half the total capacity; a failed attempt is retried at
// once on an upstream the request has not tried (up to 3 attempts). A
// request's latency is from its arrival to the end of its last attempt.
// Outlier ejection is disabled, so the figures show the policy alone.
type simConfig struct {
	upstreams int
	workers   int
	mean      time.Duration
	rate      float64 // requests per second
	duration  time.Duration
	slowAt    time.Duration
	keys      int
}

var defaultSim = simConfig{upstreams: 10, workers: 4, mean: 10 * time.Millisecond, rate: 2000, duration: 60 * time.Second, slowAt: 5 * time.Second, keys: 10000}

type simResult struct {
	p50, p99, p999 time.Duration
	requests       int
	failedAttempts int
	failed         int // requests whose every attempt failed
}

type simUpstream struct {
	busy  int
	queue []*simAttempt
}

type simRequest struct {
	arrival time.Duration
	key     string
	tried   []string
}

type simAttempt struct {
	req   *simRequest
	conn  balancer.Conn[int]
	start time.Duration
}

type simEvent struct {
	at      time.Duration
	seq     int // FIFO among equal times, for determinism
	attempt *simAttempt
	arrival bool
}

type eventHeap []simEvent

func (h eventHeap) Len() int { return len(h) }
func (h eventHeap) Less(i, j int) bool {
	if h[i].at != h[j].at {
		return h[i].at < h[j].at
	}
	return h[i].seq < h[j].seq
}
func (h eventHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *eventHeap) Push(x any)   { *h = append(*h, x.(simEvent)) }
func (h *eventHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

var errFailFast = errors.New("upstream 1 fails fast")

func simulate(tb testing.TB, p balancer.Policy, cfg simConfig) simResult {
	epoch := time.Unix(1_700_000_000, 0)
	var now time.Duration
	b := balancer.New(p, &balancer.Options[int]{
		Now: func() time.Time { return epoch.Add(now) }, Seed: 1, ConsecutiveFailures: -1,
	})
	defer b.Close()
	ups := make([]*simUpstream, cfg.upstreams)
	for i := range ups {
		ups[i] = &simUpstream{}
		if err := b.Add(balancer.Backend[int]{ID: fmt.Sprintf("u%02d", i), Value: i}); err != nil {
			tb.Fatal(err)
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))      // service times
	arrivals := rand.New(rand.NewPCG(3, 4)) // the same workload for every policy
	var events eventHeap
	seq := 0
	push := func(e simEvent) { seq++; e.seq = seq; heap.Push(&events, e) }
	service := func(u int) time.Duration {
		mean := float64(cfg.mean)
		if u == 0 && now >= cfg.slowAt {
			mean *= 10
		}
		return time.Duration(rng.ExpFloat64() * mean)
	}
	var lat []time.Duration
	var res simResult
	// start begins serving a on upstream u now.
	start := func(u int, a *simAttempt) {
		ups[u].busy++
		push(simEvent{at: now + service(u), attempt: a})
	}
	send := func(r *simRequest) {
		c, err := b.PickIf(r.key, func(id string, _ int) bool { return !slices.Contains(r.tried, id) })
		if err != nil {
			tb.Fatal(err)
		}
		a := &simAttempt{req: r, conn: c, start: now}
		u := c.Backend()
		switch {
		case u == 1:
			push(simEvent{at: now + time.Millisecond, attempt: a})
		case ups[u].busy < cfg.workers:
			start(u, a)
		default:
			ups[u].queue = append(ups[u].queue, a)
		}
	}
	push(simEvent{at: 0, arrival: true})
	for events.Len() > 0 {
		e := heap.Pop(&events).(simEvent)
		now = e.at
		if e.arrival {
			r := &simRequest{arrival: now, key: fmt.Sprint("k", arrivals.IntN(cfg.keys))}
			res.requests++
			send(r)
			if next := now + time.Duration(arrivals.ExpFloat64()/cfg.rate*float64(time.Second)); next < cfg.duration {
				push(simEvent{at: next, arrival: true})
			}
			continue
		}
		a := e.attempt
		u := a.conn.Backend()
		var err error
		if u == 1 {
			err = errFailFast
		} else {
			ups[u].busy--
			if q := ups[u].queue; len(q) > 0 {
				ups[u].queue = q[1:]
				start(u, q[0])
			}
		}
		a.conn.Report(err, now-a.start)
		r := a.req
		if err != nil {
			res.failedAttempts++
			r.tried = append(r.tried, a.conn.ID())
			if len(r.tried) < 3 {
				send(r)
				continue
			}
			res.failed++
		}
		lat = append(lat, now-r.arrival)
	}
	slices.Sort(lat)
	q := func(p float64) time.Duration { return lat[int(math.Ceil(p*float64(len(lat))))-1] }
	res.p50, res.p99, res.p999 = q(0.50), q(0.99), q(0.999)
	return res
}

func simPolicies() []balancer.Policy {
	return []balancer.Policy{balancer.RoundRobin(), balancer.WeightedRoundRobin(), balancer.LeastConnections(), balancer.PeakEWMA(nil), balancer.ConsistentHash(nil)}
}

// TestSimulationP2CBeatsRoundRobin checks the simulated (virtual, hence
// deterministic) latencies, not a wall-clock timing.
func TestSimulationP2CBeatsRoundRobin(t *testing.T) {
	cfg := defaultSim
	cfg.duration = 20 * time.Second
	rr := simulate(t, balancer.RoundRobin(), cfg)
	p2c := simulate(t, balancer.PeakEWMA(nil), cfg)
	t.Logf("round robin: %+v", rr)
	t.Logf("p2c peak ewma: %+v", p2c)
	if p2c.p99 >= rr.p99 {
		t.Errorf("P2C peak EWMA p99 %v is not below round robin's %v", p2c.p99, rr.p99)
	}
	if p2c.failedAttempts*5 > rr.failedAttempts {
		t.Errorf("P2C sent %d attempts to the failing upstream, round robin %d: the failure penalty should avoid it", p2c.failedAttempts, rr.failedAttempts)
	}
	if again := simulate(t, balancer.PeakEWMA(nil), cfg); again != p2c {
		t.Errorf("simulation is not deterministic: %+v then %+v", p2c, again)
	}
}

// BenchmarkSimulation reports simulated latency quantiles per policy
// (p50-ms, p99-ms, p999-ms, and failed attempts per request), then
// rr/p2c-p99: round robin's p99 over P2C peak EWMA's in the same run. Two
// loads: 50 % of capacity (the slow upstream is overloaded under an even
// share, its queue grows for the whole run) and 7.5 % (it keeps up, only
// slowly).
//
//	go test -run '^$' -bench Simulation -benchtime 1x ./balancer
func BenchmarkSimulation(b *testing.B) {
	light := defaultSim
	light.rate = 300
	for _, sc := range []struct {
		name string
		cfg  simConfig
	}{{"load=50%", defaultSim}, {"load=7.5%", light}} {
		results := map[string]simResult{}
		for _, p := range simPolicies() {
			b.Run(sc.name+"/"+p.Name(), func(b *testing.B) {
				var r simResult
				for range b.N {
					r = simulate(b, p, sc.cfg)
				}
				results[p.Name()] = r
				report(b, r)
			})
		}
		b.Run(sc.name+"/rr-vs-p2c", func(b *testing.B) {
			rr, ok1 := results["round_robin"]
			p2c, ok2 := results["p2c_peak_ewma"]
			if !ok1 || !ok2 {
				for range b.N {
					rr = simulate(b, balancer.RoundRobin(), sc.cfg)
					p2c = simulate(b, balancer.PeakEWMA(nil), sc.cfg)
				}
			}
			b.ReportMetric(float64(rr.p99)/float64(p2c.p99), "rr/p2c-p99")
		})
	}
}

func report(b *testing.B, r simResult) {
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(ms(r.p50), "p50-ms")
	b.ReportMetric(ms(r.p99), "p99-ms")
	b.ReportMetric(ms(r.p999), "p999-ms")
	b.ReportMetric(float64(r.failedAttempts)/float64(r.requests), "failed-attempts/req")
}
