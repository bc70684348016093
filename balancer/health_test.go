package balancer_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hourglass-io/hourglass/balancer"
	"github.com/hourglass-io/hourglass/tsstore"
)

func status(b *balancer.Balancer[string], id string) balancer.Status {
	for _, s := range b.Status() {
		if s.ID == id {
			return s
		}
	}
	return balancer.Status{}
}

// fail completes n picks of backend id with an error (picking with a
// filter so that only id is chosen).
func fail(t *testing.T, b *balancer.Balancer[string], id string, n int) {
	t.Helper()
	for range n {
		c, err := b.PickIf("", func(x, _ string) bool { return x == id })
		if err != nil {
			t.Fatalf("pick %s: %v", id, err)
		}
		c.Done(errors.New("boom"))
	}
}

func TestEjectionAndRecovery(t *testing.T) {
	clk := newClock()
	b := newBalancer(t, balancer.RoundRobin(), &balancer.Options[string]{
		Now: clk.Now, ConsecutiveFailures: 3, BaseEjectionTime: 10 * time.Second, MaxEjectionTime: 25 * time.Second,
		MaxEjectionPercent: 50,
	}, 1, 1, 1, 1)

	fail(t, b, "b", 2)
	c, _ := b.PickIf("", func(x, _ string) bool { return x == "b" })
	c.Done(nil) // a success resets the run
	fail(t, b, "b", 2)
	if status(b, "b").Ejected {
		t.Fatal("b ejected after 2 consecutive failures, threshold is 3")
	}
	fail(t, b, "b", 1)
	s := status(b, "b")
	if !s.Ejected || s.Ejections != 1 || !s.EjectedUntil.Equal(clk.Now().Add(10*time.Second)) {
		t.Fatalf("after 3 consecutive failures: %+v, want ejected for 10s", s)
	}
	if got := count(t, b, 300, nil); got["b"] != 0 {
		t.Fatalf("ejected backend picked: %v", got)
	}

	// Back after the base ejection time, without any event but the clock.
	clk.Advance(10 * time.Second)
	if got := count(t, b, 400, nil); got["b"] != 100 {
		t.Fatalf("after its ejection ended b got %d of 400 picks, want 100", got["b"])
	}
	// Ejected again at once: twice as long.
	fail(t, b, "b", 3)
	if s := status(b, "b"); s.Ejections != 2 || !s.EjectedUntil.Equal(clk.Now().Add(20*time.Second)) {
		t.Fatalf("second ejection: %+v, want 20s", s)
	}
	clk.Advance(20 * time.Second)
	fail(t, b, "b", 3)
	if s := status(b, "b"); s.Ejections != 3 || !s.EjectedUntil.Equal(clk.Now().Add(25*time.Second)) {
		t.Fatalf("third ejection: %+v, want the 25s cap", s)
	}
	// A backend that stayed in for MaxEjectionTime starts over.
	clk.Advance(25*time.Second + 25*time.Second)
	fail(t, b, "b", 3)
	if s := status(b, "b"); s.Ejections != 1 || !s.EjectedUntil.Equal(clk.Now().Add(10*time.Second)) {
		t.Fatalf("ejection after a clean period: %+v, want the base 10s", s)
	}
	if s := status(b, "b"); s.EjectionsTotal != 4 || s.Failures != 14 {
		t.Errorf("counters: %+v, want 4 ejections and 14 failures", s)
	}
}

func TestMaxEjectionPercent(t *testing.T) {
	clk := newClock()
	b := newBalancer(t, balancer.RoundRobin(), &balancer.Options[string]{
		Now: clk.Now, ConsecutiveFailures: 1, MaxEjectionPercent: 50, PanicThreshold: -1,
	}, 1, 1, 1, 1)
	for _, id := range []string{"a", "b", "c"} {
		fail(t, b, id, 1)
	}
	ejected := 0
	for _, s := range b.Status() {
		if s.Ejected {
			ejected++
		}
	}
	if ejected != 2 {
		t.Errorf("%d of 4 backends ejected, want the 50 %% cap: 2", ejected)
	}
	// The default (10 %) still ejects one.
	b2 := newBalancer(t, balancer.RoundRobin(), &balancer.Options[string]{Now: clk.Now, ConsecutiveFailures: 1}, 1, 1, 1)
	fail(t, b2, "a", 1)
	fail(t, b2, "b", 1)
	if !status(b2, "a").Ejected || status(b2, "b").Ejected {
		t.Errorf("default max ejection percent: a %+v, b %+v; want only a ejected", status(b2, "a"), status(b2, "b"))
	}
}

func TestAllEjectedError(t *testing.T) {
	clk := newClock()
	b := newBalancer(t, balancer.RoundRobin(), &balancer.Options[string]{
		Now: clk.Now, ConsecutiveFailures: 1, MaxEjectionPercent: 100, PanicThreshold: -1,
	}, 1, 1)
	fail(t, b, "a", 1)
	fail(t, b, "b", 1)
	_, err := b.Pick("")
	if !errors.Is(err, tsstore.ErrUnavailable) || !strings.Contains(err.Error(), "all 2 backends are ejected") {
		t.Fatalf("pick with all ejected: %v", err)
	}
	clk.Advance(balancer.DefaultBaseEjectionTime)
	if _, err := b.Pick(""); err != nil {
		t.Fatalf("pick after the ejections ended: %v", err)
	}
}

// probeSet is a probe whose result per backend the test sets.
type probeSet struct {
	mu   sync.Mutex // guards down
	down map[string]bool
}

func (p *probeSet) set(id string, down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.down == nil {
		p.down = map[string]bool{}
	}
	p.down[id] = down
}

func (p *probeSet) probe(ctx context.Context, id string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.down[id] {
		return errors.New("connection refused")
	}
	return nil
}

func TestActiveHealthChecksRiseAndFall(t *testing.T) {
	var ps probeSet
	b := newBalancer(t, balancer.RoundRobin(), &balancer.Options[string]{
		Probe: ps.probe, CheckInterval: -1, Rise: 2, Fall: 3, PanicThreshold: -1,
	}, 1, 1, 1)
	ctx := context.Background()
	ps.set("b", true)
	b.CheckHealth(ctx)
	b.CheckHealth(ctx)
	if !status(b, "b").Healthy {
		t.Fatal("b unhealthy after 2 failed probes, fall is 3")
	}
	b.CheckHealth(ctx)
	if s := status(b, "b"); s.Healthy || s.LastProbeError != "connection refused" {
		t.Fatalf("after 3 failed probes: %+v", s)
	}
	if got := count(t, b, 200, nil); got["b"] != 0 {
		t.Fatalf("unhealthy backend picked: %v", got)
	}
	ps.set("b", false)
	b.CheckHealth(ctx)
	if status(b, "b").Healthy {
		t.Fatal("b healthy after 1 passed probe, rise is 2")
	}
	b.CheckHealth(ctx)
	if !status(b, "b").Healthy {
		t.Fatal("b still unhealthy after 2 passed probes")
	}
	if got := count(t, b, 300, nil); got["b"] != 100 {
		t.Fatalf("recovered backend got %d of 300 picks", got["b"])
	}
	// All down, panic mode disabled: picks fail and say why.
	for _, id := range []string{"a", "b", "c"} {
		ps.set(id, true)
	}
	for range 3 {
		b.CheckHealth(ctx)
	}
	if _, err := b.Pick(""); !errors.Is(err, tsstore.ErrUnavailable) || !strings.Contains(err.Error(), "all 3 backends are unhealthy") {
		t.Fatalf("pick with all unhealthy: %v", err)
	}
}

// The balancer's own goroutine runs the checks; Close stops it (goleak
// checks that in TestMain).
func TestActiveHealthChecksInBackground(t *testing.T) {
	var ps probeSet
	ps.set("a", true)
	b := balancer.New(balancer.RoundRobin(), &balancer.Options[string]{
		Probe: ps.probe, CheckInterval: time.Millisecond, Fall: 1, PanicThreshold: -1,
	})
	defer b.Close()
	b.Add(balancer.Backend[string]{ID: "a", Value: "a"}, balancer.Backend[string]{ID: "b", Value: "b"})
	deadline := time.Now().Add(10 * time.Second)
	for status(b, "a").Healthy {
		if time.Now().After(deadline) {
			t.Fatal("the background checks never marked a unhealthy")
		}
		time.Sleep(time.Millisecond)
	}
	if !status(b, "b").Healthy {
		t.Error("b marked unhealthy")
	}
}

func TestPanicThreshold(t *testing.T) {
	var ps probeSet
	b := newBalancer(t, balancer.RoundRobin(), &balancer.Options[string]{
		Probe: ps.probe, CheckInterval: -1, Fall: 1, Rise: 1, PanicThreshold: 50,
	}, 1, 1, 1, 1)
	ctx := context.Background()
	ps.set("a", true)
	ps.set("b", true)
	b.CheckHealth(ctx)
	// 2 of 4 usable = 50 %: not below the threshold.
	if got := count(t, b, 200, nil); b.Panicking() || got["a"]+got["b"] != 0 {
		t.Fatalf("at 50 %% healthy: panic %v, picks %v", b.Panicking(), got)
	}
	ps.set("c", true)
	b.CheckHealth(ctx)
	// 1 of 4 = 25 % < 50 %: use all of them.
	got := count(t, b, 400, nil)
	if !b.Panicking() || got["a"] != 100 || got["b"] != 100 || got["c"] != 100 || got["d"] != 100 {
		t.Fatalf("at 25 %% healthy: panic %v, picks %v; want all four evenly", b.Panicking(), got)
	}
	ps.set("a", false)
	ps.set("b", false)
	b.CheckHealth(ctx)
	if got := count(t, b, 300, nil); b.Panicking() || got["c"] != 0 {
		t.Fatalf("recovered to 75 %%: panic %v, picks %v", b.Panicking(), got)
	}
}

func TestSlowStart(t *testing.T) {
	clk := newClock()
	b := newBalancer(t, balancer.WeightedRoundRobin(), &balancer.Options[string]{
		Now: clk.Now, SlowStart: 10 * time.Second, SlowStartMinPercent: 10,
	}, 1)
	b.Add(balancer.Backend[string]{ID: "b", Value: "b"})
	// Weight factor of b: 10 % at first, 50 % after 5 s, 100 % after 10 s.
	// Smooth WRR makes the shares exact up to one pick in a cycle.
	for _, step := range []struct {
		at    time.Duration
		share float64
	}{{0, 0.1 / 1.1}, {5 * time.Second, 0.5 / 1.5}, {10 * time.Second, 0.5}} {
		clk.Advance(step.at - clk.Now().Sub(time.Unix(1_700_000_000, 0)))
		got := count(t, b, 3000, nil)
		within(t, got, map[string]float64{"b": step.share}, 0.01)
		if s := status(b, "b"); s.SlowStart != (step.at < 10*time.Second) {
			t.Errorf("at %v: slow start %v", step.at, s.SlowStart)
		}
	}
	// A backend back from ejection ramps up again.
	fail(t, b, "b", balancer.DefaultConsecutiveFailures)
	clk.Advance(balancer.DefaultBaseEjectionTime)
	got := count(t, b, 1100, nil)
	within(t, got, map[string]float64{"b": 0.1 / 1.1}, 0.01)
}

func TestRemoveDoesNotDisturbInFlight(t *testing.T) {
	clk := newClock()
	b := newBalancer(t, balancer.LeastConnections(), &balancer.Options[string]{Now: clk.Now, ConsecutiveFailures: 1}, 1, 1)
	c, _ := b.PickIf("", func(id, _ string) bool { return id == "b" })
	if n := b.Remove("b", "nope"); n != 1 {
		t.Fatalf("Remove = %d, want 1", n)
	}
	if got := count(t, b, 10, nil); got["a"] != 10 {
		t.Fatalf("picks after removal: %v", got)
	}
	if c.Backend() != "b" {
		t.Fatal("the conn lost its backend")
	}
	c.Done(errors.New("late failure")) // completes normally, ejects nothing
	if _, err := b.Pick(""); err != nil {
		t.Fatal(err)
	}
	if err := b.Add(balancer.Backend[string]{ID: "b", Value: "b"}); err != nil {
		t.Fatal(err)
	}
	if s := status(b, "b"); s.InFlight != 0 || s.Picks != 0 || s.Ejected {
		t.Errorf("re-added backend starts fresh: %+v", s)
	}
}
