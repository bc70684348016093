package writeback_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/writeback"
)

// admitted reports whether Admit lets a write start at once: with a
// context that has ended, Admit admits only when there is room, and
// fails with the context's error when it would wait.
func admitted(t *testing.T, eng *writeback.Engine) (func(), bool) {
	t.Helper()
	done, cancel := context.WithCancel(ctx)
	cancel()
	release, err := eng.Admit(done)
	if err != nil {
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Admit: %v, want nil or context.Canceled", err)
		}
		return nil, false
	}
	return release, true
}

// holdFlush starts a flush of e and holds it in its first store Write; it
// returns the function that lets it go on and waits for its end.
func holdFlush(t *testing.T, e *env) (finish func()) {
	t.Helper()
	if err := e.eng.Write(ctx, []tsstore.Point{pt("views", "m1", e.clock.Millis(), 1)}); err != nil {
		t.Fatal(err)
	}
	inFlush := make(chan struct{})
	resume := make(chan struct{})
	e.store.beforeWrite = func() {
		close(inFlush)
		<-resume
	}
	flushed := make(chan error, 1)
	e.clock.Advance(2 * time.Second)
	go func() {
		_, err := e.eng.Flush(ctx)
		flushed <- err
	}()
	<-inFlush
	return func() {
		close(resume)
		if err := <-flushed; err != nil {
			t.Fatal(err)
		}
		e.store.beforeWrite = nil
	}
}

// TestAdmitWhileFlushing: while a flush runs, Admit lets FlushWriters
// writes run at once and holds the next until one ends; without a flush
// it holds none.
func TestAdmitWhileFlushing(t *testing.T) {
	e := newEnv(t, &writeback.Options{FlushWriters: 2})
	// No flush: no bound.
	var releases []func()
	for i := range 5 {
		release, ok := admitted(t, e.eng)
		if !ok {
			t.Fatalf("write %d held back with no flush running", i+1)
		}
		releases = append(releases, release)
	}
	for _, r := range releases {
		r()
	}
	finish := holdFlush(t, e)
	if !e.eng.Stats().Flushing {
		t.Error("Stats.Flushing false during a flush")
	}
	r1, ok1 := admitted(t, e.eng)
	r2, ok2 := admitted(t, e.eng)
	if !ok1 || !ok2 {
		t.Fatalf("during a flush, writes 1 and 2 admitted: %v %v, want both (FlushWriters 2)", ok1, ok2)
	}
	if _, ok := admitted(t, e.eng); ok {
		t.Fatal("during a flush, a third write was admitted with FlushWriters 2")
	}
	// A write that waits starts when one ends.
	third := make(chan func(), 1)
	go func() {
		release, err := e.eng.Admit(ctx)
		if err != nil {
			t.Error(err)
		}
		third <- release
	}()
	r1()
	r1() // a second call does nothing
	var r3 func()
	select {
	case r3 = <-third:
	case <-time.After(10 * time.Second):
		t.Fatal("a waiting write was not admitted when another ended")
	}
	if _, ok := admitted(t, e.eng); ok {
		t.Fatal("after one write ended and one started, a third was admitted (a double release counted twice?)")
	}
	finish()
	if e.eng.Stats().Flushing {
		t.Error("Stats.Flushing true after the flush")
	}
	// The flush has ended: no bound, though two writes still run.
	r4, ok := admitted(t, e.eng)
	if !ok {
		t.Fatal("after the flush, a write was held back")
	}
	for _, r := range []func(){r2, r3, r4} {
		r()
	}
	if s := e.eng.Stats(); s.AdmitWaits < 1 || s.AdmitWait <= 0 {
		t.Errorf("Stats: AdmitWaits %d, AdmitWait %v; want the write that waited counted", s.AdmitWaits, s.AdmitWait)
	}
}

// TestAdmitWhileArchiving: an archive step that outlives its flush (which
// ended at its budget) still bounds the writes, until it ends.
func TestAdmitWhileArchiving(t *testing.T) {
	e := newEnv(t, &writeback.Options{FlushWriters: 1, FlushBudget: 50 * time.Millisecond})
	if err := e.eng.Write(ctx, []tsstore.Point{pt("views", "m1", e.clock.Millis(), 1)}); err != nil {
		t.Fatal(err)
	}
	hold := make(chan struct{})
	e.arch[0].gate.Store(&hold)
	if rep := e.flush(t); !rep.Overrun {
		t.Fatalf("flush with its archive held: %+v, want an overrun", rep)
	}
	if !e.eng.Stats().Flushing {
		t.Error("Stats.Flushing false while the archive step of an overrun flush runs")
	}
	r1, ok := admitted(t, e.eng)
	if !ok {
		t.Fatal("first write held back")
	}
	if _, ok := admitted(t, e.eng); ok {
		t.Fatal("a second write was admitted while the archive step ran, with FlushWriters 1")
	}
	close(hold)
	e.arch[0].gate.Store(nil)
	if rep := e.flush(t); rep.Overrun || len(rep.Committed) != 1 {
		t.Fatalf("flush after the archive step: %+v, want the generation committed", rep)
	}
	r2, ok := admitted(t, e.eng)
	if !ok {
		t.Fatal("after the archive step ended, a second write was held back")
	}
	r1()
	r2()
}

// TestAdmitUnbounded: a negative FlushWriters never holds a write back.
func TestAdmitUnbounded(t *testing.T) {
	e := newEnv(t, &writeback.Options{FlushWriters: -1})
	finish := holdFlush(t, e)
	for i := range 8 {
		release, ok := admitted(t, e.eng)
		if !ok {
			t.Fatalf("write %d held back during a flush with FlushWriters -1", i+1)
		}
		defer release()
	}
	finish()
}

// TestAdmitDefaultBound: FlushWriters 0 bounds the writes during a flush
// to half of GOMAXPROCS, at least one.
func TestAdmitDefaultBound(t *testing.T) {
	for _, c := range []struct{ procs, want int }{{1, 1}, {2, 1}, {4, 2}, {5, 2}} {
		t.Run(fmt.Sprintf("GOMAXPROCS=%d", c.procs), func(t *testing.T) {
			old := runtime.GOMAXPROCS(c.procs)
			e := newEnv(t, nil) // the bound is set when the engine is made
			runtime.GOMAXPROCS(old)
			finish := holdFlush(t, e)
			defer finish()
			for i := range c.want {
				release, ok := admitted(t, e.eng)
				if !ok {
					t.Fatalf("write %d held back, want %d admitted during a flush", i+1, c.want)
				}
				defer release()
			}
			if _, ok := admitted(t, e.eng); ok {
				t.Fatalf("write %d admitted during a flush, want %d at most", c.want+1, c.want)
			}
		})
	}
}
