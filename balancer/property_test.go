package balancer_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/hourglass-io/hourglass/balancer"
	"github.com/hourglass-io/hourglass/tsstore"
	"pgregory.net/rapid"
)

// For any sequence of adds, removes, failures, clock steps and picks, with
// any policy: a pick returns a registered backend; outside panic mode never
// an ejected one; it fails only when no backend is usable, with
// ErrUnavailable; nothing stays in flight.
func TestPickInvariants(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		clk := newClock()
		pol := rapid.SampledFrom(policies()).Draw(rt, "policy")
		b := balancer.New(pol, &balancer.Options[string]{
			Now: clk.Now, Seed: 3, ConsecutiveFailures: 2, MaxEjectionPercent: rapid.IntRange(1, 100).Draw(rt, "maxEject"),
			PanicThreshold: rapid.SampledFrom([]int{-1, 50}).Draw(rt, "panic"), SlowStart: 5 * time.Second,
		})
		defer b.Close()
		registered := map[string]bool{}
		for step := range rapid.IntRange(1, 60).Draw(rt, "steps") {
			id := fmt.Sprint("s", rapid.IntRange(0, 5).Draw(rt, "id"))
			switch op := rapid.IntRange(0, 4).Draw(rt, "op"); op {
			case 0:
				err := b.Add(balancer.Backend[string]{ID: id, Value: id, Weight: rapid.IntRange(0, 3).Draw(rt, "w")})
				if registered[id] != (err != nil) {
					rt.Fatalf("step %d: add %s (registered %v): %v", step, id, registered[id], err)
				}
				registered[id] = true
			case 1:
				if n := b.Remove(id); (n == 1) != registered[id] {
					rt.Fatalf("step %d: remove %s returned %d", step, id, n)
				}
				delete(registered, id)
			case 2:
				clk.Advance(time.Duration(rapid.IntRange(0, 40).Draw(rt, "secs")) * time.Second)
			case 3, 4:
				ejected := map[string]bool{}
				usable := 0
				for _, s := range b.Status() {
					ejected[s.ID] = s.Ejected
					if !s.Ejected {
						usable++
					}
				}
				c, err := b.Pick(fmt.Sprint("k", step))
				if err != nil {
					if !errors.Is(err, tsstore.ErrUnavailable) || (usable > 0 && !b.Panicking()) {
						rt.Fatalf("step %d: pick failed with %d usable: %v", step, usable, err)
					}
					continue
				}
				if !registered[c.ID()] {
					rt.Fatalf("step %d: picked unregistered %s", step, c.ID())
				}
				if ejected[c.ID()] && !b.Panicking() {
					rt.Fatalf("step %d: picked ejected %s outside panic mode", step, c.ID())
				}
				if op == 4 {
					c.Done(errors.New("failed"))
				} else {
					c.Done(nil)
				}
			}
		}
		for _, s := range b.Status() {
			if s.InFlight != 0 {
				rt.Fatalf("%s has %d in flight", s.ID, s.InFlight)
			}
		}
	})
}
