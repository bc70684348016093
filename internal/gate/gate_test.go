package gate_test

import (
	"runtime"
	"sync/atomic"
	"testing"

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
	// Wait until Close has begun (Enter fails from then on); it must not
	// return while the call is in progress.
	for g.Enter() {
		g.Leave()
		runtime.Gosched()
	}
	if closed.Load() {
		t.Fatal("Close returned with a call in progress")
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
