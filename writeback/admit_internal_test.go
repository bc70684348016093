package writeback

import (
	"context"
	"testing"
	"time"
)

// TestAdmissionStallAndProgress: a stall lifts the bound, for writes that
// arrive and for the one waiting (woken by the timer); progress puts the
// bound back, and writes admitted through the stall count against it.
func TestAdmissionStallAndProgress(t *testing.T) {
	a := &admission{limit: 1, stall: 50 * time.Millisecond, now: time.Now}
	var stats engineStats
	stalls := make(chan struct{}, 2)
	a.stalled = func() { stalls <- struct{}{} }
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
	var r2 func()
	select {
	case r2 = <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("the waiting write was not admitted by the stall")
	}
	select {
	case <-stalls:
	case <-time.After(10 * time.Second):
		t.Fatal("the stall was not reported")
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
	if len(stalls) != 0 {
		t.Error("one stall reported twice")
	}
}
