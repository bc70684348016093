package writeback

import (
	"context"
	"sync"
	"testing"
	"time"
)

// fakeNow is a clock that moves only when told.
type fakeNow struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeNow) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeNow) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// TestAdmissionStallAndProgress: a stall (on the admission's clock) lifts
// the bound, for writes that arrive and for the one waiting (woken by the
// timer); progress puts the bound back, and writes admitted through the
// stall count against it. The clock moves only when the test moves it.
func TestAdmissionStallAndProgress(t *testing.T) {
	clock := &fakeNow{t: time.Unix(1_700_000_000, 0)}
	a := &admission{limit: 1, stall: 50 * time.Millisecond, now: clock.now}
	var stats engineStats
	stalls := 0
	a.stalled = func() { stalls++ } // under a.mu
	a.start()
	defer a.end()
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	r1, err := a.admit(ended, &stats)
	if err != nil {
		t.Fatalf("first write: %v", err)
	}
	if _, err := a.admit(ended, &stats); err == nil {
		t.Fatal("a second write admitted at once, before any stall")
	}
	got := make(chan func(), 1)
	go func() {
		r, err := a.admit(context.Background(), &stats)
		if err != nil {
			t.Error(err)
		}
		got <- r
	}()
	// Once the write waits, the stall passes on the clock; the timer
	// (armed on real time for the stall's length, and armed again for as
	// long as it finds no stall) admits the waiting write.
	for deadline := time.Now().Add(10 * time.Second); stats.admitWaits.Load() == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the second write did not wait")
		}
	}
	clock.advance(time.Minute)
	var r2 func()
	select {
	case r2 = <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("the waiting write was not admitted by the stall")
	}
	r3, err := a.admit(ended, &stats)
	if err != nil {
		t.Fatalf("a write during the stall: %v", err)
	}
	a.progress()
	if _, err := a.admit(ended, &stats); err == nil {
		t.Fatal("a write admitted at once after progress, with three running")
	}
	r1()
	r2()
	if _, err := a.admit(ended, &stats); err == nil {
		t.Fatal("a write admitted at once with one still running (bound 1)")
	}
	r3()
	r4, err := a.admit(ended, &stats)
	if err != nil {
		t.Fatalf("a write with none running: %v", err)
	}
	r4()
	a.mu.Lock()
	defer a.mu.Unlock()
	if stalls != 1 {
		t.Errorf("%d stalls reported, want 1", stalls)
	}
}
