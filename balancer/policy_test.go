package balancer_test

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/hourglass-io/hourglass/balancer"
	"github.com/hourglass-io/hourglass/tsstore"
)

// newBalancer returns a balancer over backends named a, b, c, … with the
// given weights, whose value is the name.
func newBalancer(t testing.TB, p balancer.Policy, opts *balancer.Options[string], weights ...int) *balancer.Balancer[string] {
	t.Helper()
	if opts == nil {
		opts = &balancer.Options[string]{}
	}
	if opts.Seed == 0 {
		opts.Seed = 42
	}
	b := balancer.New(p, opts)
	t.Cleanup(func() { b.Close() })
	for i, w := range weights {
		id := name(i)
		if err := b.Add(balancer.Backend[string]{ID: id, Value: id, Weight: w}); err != nil {
			t.Fatal(err)
		}
	}
	return b
}

func name(i int) string {
	if i < 26 {
		return string(rune('a' + i))
	}
	return fmt.Sprintf("b%03d", i)
}

// count picks n times, completing each pick at once, and counts the picks
// per backend.
func count(t testing.TB, b *balancer.Balancer[string], n int, key func(i int) string) map[string]int {
	t.Helper()
	got := map[string]int{}
	for i := range n {
		k := ""
		if key != nil {
			k = key(i)
		}
		c, err := b.Pick(k)
		if err != nil {
			t.Fatal(err)
		}
		got[c.Backend()]++
		c.Done(nil)
	}
	return got
}

// within fails unless every backend's share of picks is want[id] within
// tol (absolute, as a fraction of all picks).
func within(t *testing.T, got map[string]int, want map[string]float64, tol float64) {
	t.Helper()
	total := 0
	for _, n := range got {
		total += n
	}
	for id, w := range want {
		share := float64(got[id]) / float64(total)
		if math.Abs(share-w) > tol {
			t.Errorf("backend %s got %.4f of %d picks, want %.4f ± %.4f (all: %v)", id, share, total, w, tol, got)
		}
	}
}

func TestRoundRobinIsExactlyEven(t *testing.T) {
	b := newBalancer(t, balancer.RoundRobin(), nil, 1, 5, 1) // weights are ignored
	got := count(t, b, 3000, nil)
	for _, id := range []string{"a", "b", "c"} {
		if got[id] != 1000 {
			t.Errorf("round robin: %s got %d of 3000 picks, want 1000: %v", id, got[id], got)
		}
	}
	// In turn: no backend twice in a row.
	prev := ""
	for range 30 {
		c, _ := b.Pick("")
		if c.ID() == prev {
			t.Fatalf("round robin picked %s twice in a row", prev)
		}
		prev = c.ID()
		c.Done(nil)
	}
}

func TestWeightedRoundRobinIsSmooth(t *testing.T) {
	b := newBalancer(t, balancer.WeightedRoundRobin(), nil, 5, 1, 1)
	var seq []string
	for range 7 {
		c, err := b.Pick("")
		if err != nil {
			t.Fatal(err)
		}
		seq = append(seq, c.ID())
		c.Done(nil)
	}
	// nginx's documented sequence for weights 5, 1, 1.
	if got := strings.Join(seq, " "); got != "a a b a c a a" {
		t.Errorf("smooth WRR sequence = %q, want %q", got, "a a b a c a a")
	}
	got := count(t, b, 7000, nil)
	if got["a"] != 5000 || got["b"] != 1000 || got["c"] != 1000 {
		t.Errorf("smooth WRR over 7000 picks = %v, want exactly 5000/1000/1000", got)
	}
}

func TestLeastConnectionsBalancesInFlight(t *testing.T) {
	b := newBalancer(t, balancer.LeastConnections(), nil, 2, 1, 1)
	var held []balancer.Conn[string]
	for range 40 {
		c, err := b.Pick("")
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	// (in flight + 1) / weight is kept level: a holds twice as many.
	in := map[string]int64{}
	for _, s := range b.Status() {
		in[s.ID] = s.InFlight
	}
	if in["a"] < 19 || in["a"] > 21 || in["b"] < 9 || in["b"] > 11 || in["c"] < 9 || in["c"] > 11 {
		t.Errorf("least connections in flight = %v, want about 20/10/10", in)
	}
	for _, c := range held {
		c.Done(nil)
	}
	// Idle backends tie; ties are broken at random: about even
	// (tolerance ±2 % over 30000 picks, seeded).
	b2 := newBalancer(t, balancer.LeastConnections(), nil, 1, 1, 1)
	within(t, count(t, b2, 30000, nil), map[string]float64{"a": 1. / 3, "b": 1. / 3, "c": 1. / 3}, 0.02)
}

// latencyRun picks n times; each pick is completed with the latency (and
// error) that lat returns for its backend, on a virtual clock.
func latencyRun(t *testing.T, b *balancer.Balancer[string], clk *fakeClock, n int, lat func(id string) (time.Duration, error)) map[string]int {
	t.Helper()
	got := map[string]int{}
	for range n {
		c, err := b.Pick("")
		if err != nil {
			t.Fatal(err)
		}
		d, err := lat(c.ID())
		got[c.ID()]++
		clk.Advance(time.Millisecond)
		c.Report(err, d)
	}
	return got
}

func TestPeakEWMAAvoidsSlowAndFailingBackends(t *testing.T) {
	clk := newClock()
	b := newBalancer(t, balancer.PeakEWMA(nil), &balancer.Options[string]{Now: clk.Now, ConsecutiveFailures: -1}, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1)
	got := latencyRun(t, b, clk, 20000, func(id string) (time.Duration, error) {
		switch id {
		case "c":
			return 100 * time.Millisecond, nil // 10x slower
		case "d":
			return time.Millisecond, errors.New("refused") // fails fast
		}
		return 10 * time.Millisecond, nil
	})
	t.Logf("picks: %v", got)
	// Tolerance: the slow and the failing backend together get under 6 %
	// of the picks, against 20 % for round robin: P2C must take one of them
	// when it samples both (1/45 of picks), and they are probed again as
	// their estimates decay.
	if bad := float64(got["c"]+got["d"]) / 20000; bad > 0.06 {
		t.Errorf("P2C peak EWMA sent %.1f %% of picks to the slow or failing backend, want < 6 %%: %v", 100*bad, got)
	}
	for _, s := range b.Status() {
		if s.ID == "d" && s.Latency < balancer.DefaultFailurePenalty/100 {
			t.Errorf("failing backend's latency estimate %v does not reflect the failure penalty", s.Latency)
		}
	}
	// Equal backends share evenly (±3 % over 20000 picks).
	b2 := newBalancer(t, balancer.PeakEWMA(nil), &balancer.Options[string]{Now: clk.Now}, 1, 1, 1)
	even := latencyRun(t, b2, clk, 20000, func(string) (time.Duration, error) { return 10 * time.Millisecond, nil })
	within(t, even, map[string]float64{"a": 1. / 3, "b": 1. / 3, "c": 1. / 3}, 0.03)
}

func TestConsistentHashAffinityAndSpread(t *testing.T) {
	b := newBalancer(t, balancer.ConsistentHash(nil), nil, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1)
	home := map[string]string{}
	for i := range 1000 {
		k := fmt.Sprintf("merchant-%d", i)
		for range 3 {
			c, err := b.Pick(k)
			if err != nil {
				t.Fatal(err)
			}
			if h, ok := home[k]; ok && h != c.ID() {
				t.Fatalf("key %s went to %s, then to %s", k, h, c.ID())
			}
			home[k] = c.ID()
			c.Done(nil)
		}
	}
	// 100 virtual nodes per backend: each of 10 backends gets 10 % ± 4 %
	// of 100000 keys.
	want := map[string]float64{}
	for i := range 10 {
		want[name(i)] = 0.1
	}
	within(t, count(t, b, 100000, func(i int) string { return fmt.Sprintf("k%d", i) }), want, 0.04)
}

// owners maps keys to their backend with nothing in flight.
func owners(t *testing.T, b *balancer.Balancer[string], keys int) []string {
	out := make([]string, keys)
	for i := range out {
		c, err := b.Pick(fmt.Sprintf("merchant-%d", i))
		if err != nil {
			t.Fatal(err)
		}
		out[i] = c.ID()
		c.Done(nil)
	}
	return out
}

func TestConsistentHashKeyMovement(t *testing.T) {
	const n, keys = 10, 100000
	b := newBalancer(t, balancer.ConsistentHash(nil), nil, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1)
	before := owners(t, b, keys)
	b.Remove("d")
	after := owners(t, b, keys)
	moved := 0
	for i := range before {
		if before[i] != after[i] {
			moved++
			if before[i] != "d" {
				t.Fatalf("key %d moved from %s (still present) to %s", i, before[i], after[i])
			}
		}
		if after[i] == "d" {
			t.Fatalf("key %d still goes to the removed backend", i)
		}
	}
	share := float64(moved) / keys
	t.Logf("removing 1 of %d backends moved %.4f of %d keys (ideal 1/N = %.4f)", n, share, keys, 1.0/n)
	if math.Abs(share-1.0/n) > 0.03 {
		t.Errorf("moved share %.4f, want 1/N = %.2f ± 0.03", share, 1.0/n)
	}
	// Adding it back restores every key's home.
	if err := b.Add(balancer.Backend[string]{ID: "d", Value: "d"}); err != nil {
		t.Fatal(err)
	}
	again := owners(t, b, keys)
	for i := range before {
		if before[i] != again[i] {
			t.Fatalf("key %d: %s before removal, %s after re-adding", i, before[i], again[i])
		}
	}
}

func TestConsistentHashBoundedLoad(t *testing.T) {
	b := newBalancer(t, balancer.ConsistentHash(&balancer.HashOptions{LoadFactor: 1.25}), nil, 1, 1, 1, 1)
	first, err := b.Pick("hot")
	if err != nil {
		t.Fatal(err)
	}
	held := []balancer.Conn[string]{first}
	for range 99 {
		c, err := b.Pick("hot")
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	// A hot key spills over; no backend exceeds ceil(1.25 × 100 / 4) = 32.
	spread := 0
	for _, s := range b.Status() {
		if s.InFlight > 32 {
			t.Errorf("backend %s has %d in flight, over the bound 32", s.ID, s.InFlight)
		}
		if s.InFlight > 0 {
			spread++
		}
		if s.ID == first.ID() && s.InFlight < 25 {
			t.Errorf("the key's home %s has only %d in flight: it should fill up to its bound first", s.ID, s.InFlight)
		}
	}
	if spread < 4 {
		t.Errorf("hot key spread over %d backends, want all 4", spread)
	}
	for _, c := range held {
		c.Done(nil)
	}
	c, _ := b.Pick("hot")
	if c.ID() != first.ID() {
		t.Errorf("with the load gone, the hot key went to %s, not home %s", c.ID(), first.ID())
	}
	c.Done(nil)
}

func TestPickErrors(t *testing.T) {
	b := newBalancer(t, balancer.RoundRobin(), nil)
	if _, err := b.Pick(""); !errors.Is(err, tsstore.ErrUnavailable) || !strings.Contains(err.Error(), "no backends registered") {
		t.Errorf("pick with no backends: %v", err)
	}
	if err := b.Add(balancer.Backend[string]{ID: "a"}, balancer.Backend[string]{ID: "a"}); !errors.Is(err, tsstore.ErrConflict) {
		t.Errorf("duplicate ID: %v", err)
	}
	if err := b.Add(balancer.Backend[string]{ID: "x", Weight: -1}); !errors.Is(err, tsstore.ErrInvalid) {
		t.Errorf("negative weight: %v", err)
	}
	if err := b.Add(balancer.Backend[string]{ID: ""}); !errors.Is(err, tsstore.ErrInvalid) {
		t.Errorf("empty ID: %v", err)
	}
	if b.Len() != 0 {
		t.Errorf("failed adds registered %d backends", b.Len())
	}
	b.Add(balancer.Backend[string]{ID: "a", Value: "a"})
	if _, err := b.PickIf("", func(string, string) bool { return false }); !errors.Is(err, tsstore.ErrUnavailable) {
		t.Errorf("pick with nothing eligible: %v", err)
	}
	b.Close()
	if _, err := b.Pick(""); !errors.Is(err, tsstore.ErrClosed) {
		t.Errorf("pick after close: %v", err)
	}
}

// Every policy honours PickIf's filter.
func TestPickIfEveryPolicy(t *testing.T) {
	for _, p := range policies() {
		t.Run(p.Name(), func(t *testing.T) {
			b := newBalancer(t, p, nil, 1, 1, 1, 1)
			for i := range 200 {
				c, err := b.PickIf(fmt.Sprint(i), func(id, _ string) bool { return id == "b" || id == "d" })
				if err != nil {
					t.Fatal(err)
				}
				if c.ID() != "b" && c.ID() != "d" {
					t.Fatalf("PickIf returned %s", c.ID())
				}
				c.Done(nil)
			}
		})
	}
}

func policies() []balancer.Policy {
	return []balancer.Policy{balancer.RoundRobin(), balancer.WeightedRoundRobin(), balancer.LeastConnections(), balancer.PeakEWMA(nil), balancer.ConsistentHash(nil)}
}
