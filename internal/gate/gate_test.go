package gate_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/hourglass-io/hourglass/internal/gate"
)

func TestCloseWaitsForCalls(t *testing.T) {
	var g gate.Gate
	if !g.Enter() {
		t.Fatal("Enter on an open gate = false")
	}
	var closed atomic.Bool
	done := make(chan bool)
	go func() {
		ok := g.Close()
		closed.Store(true)
		done <- ok
	}()
	// Close must not return while the call is in progress; give it time
	// to run into the wait (a late start only makes the check weaker).
	time.Sleep(20 * time.Millisecond)
	if closed.Load() {
		t.Fatal("Close returned with a call in progress")
	}
	for !func() bool { // Enter fails once Close has begun
		if g.Enter() {
			g.Leave()
			return false
		}
		return true
	}() {
		time.Sleep(time.Millisecond)
	}
	g.Leave()
	if ok := <-done; !ok {
		t.Fatal("first Close = false")
	}
	if g.Close() {
		t.Fatal("second Close = true")
	}
	if g.Enter() {
		t.Fatal("Enter after Close = true")
	}
}

func TestCloseIdle(t *testing.T) {
	var g gate.Gate
	for range 3 {
		if !g.Enter() {
			t.Fatal("Enter = false")
		}
		g.Leave()
	}
	if !g.Close() {
		t.Fatal("Close = false")
	}
}
