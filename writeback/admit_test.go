package writeback_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/writeback"
)

// admitted reports whether Admit lets a write start at once: with a
// context that has ended, Admit admits only when there is a place, and
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
	var once sync.Once
	letGo := func() { once.Do(func() { close(resume) }) }
	t.Cleanup(letGo) // before the env's Close, should the test stop early
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
		letGo()
		if err := <-flushed; err != nil {
			t.Fatal(err)
		}
		e.store.beforeWrite = nil
	}
}

// waiter is a write waiting in Admit: its release arrives on the channel
// once it is admitted.
func waiter(t *testing.T, e *env) <-chan func() {
	t.Helper()
	before := e.eng.Stats().AdmitWaits
	got := make(chan func(), 1)
	go func() {
		release, err := e.eng.Admit(ctx)
		if err != nil {
			t.Error(err)
		}
		got <- release
	}()
	// AdmitWaits counts the write once it is in the queue.
	for deadline := time.Now().Add(10 * time.Second); e.eng.Stats().AdmitWaits == before; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("a write did not wait in Admit within 10 s")
		}
	}
	return got
}

// admittedBy waits (at most 10 s) for a waiter's admission.
func admittedBy(t *testing.T, w <-chan func(), what string) func() {
	t.Helper()
	select {
	case release := <-w:
		return release
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: the waiting write was not admitted", what)
		return nil
	}
}

// TestAdmitWhileFlushing: while a flush runs, Admit lets FlushWriters
// writes run at once and gives a freed place to the oldest waiting write;
// the end of the flush admits every waiting write; without a flush it
// holds none back.
func TestAdmitWhileFlushing(t *testing.T) {
	e := newEnv(t, &writeback.Options{FlushWriters: 2, FlushStall: -1})
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
	if s := e.eng.Stats(); s.AdmitWaits != 0 || s.Flushing {
		t.Fatalf("Stats with no flush: AdmitWaits %d, Flushing %v; want 0, false", s.AdmitWaits, s.Flushing)
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
	// The oldest waiting write gets the place a release frees.
	w3 := waiter(t, e)
	w4 := waiter(t, e)
	r1()
	r1() // a second call does nothing
	r3 := admittedBy(t, w3, "after a release")
	if _, ok := admitted(t, e.eng); ok {
		t.Fatal("a write was admitted past the waiting one (or a double release counted twice)")
	}
	select {
	case <-w4:
		t.Fatal("the newer waiting write was admitted before the older, or both were")
	default:
	}
	// The end of the flush admits the waiting write, with no release.
	finish()
	r4 := admittedBy(t, w4, "at the end of the flush")
	if e.eng.Stats().Flushing {
		t.Error("Stats.Flushing true after the flush")
	}
	// No bound now, though three writes run.
	r5, ok := admitted(t, e.eng)
	if !ok {
		t.Fatal("after the flush, a write was held back")
	}
	for _, r := range []func(){r2, r3, r4, r5} {
		r()
	}
	// The probes that failed at once, and w3 and w4.
	if s := e.eng.Stats(); s.AdmitWaits != 4 || s.AdmitWait <= 0 {
		t.Errorf("Stats: AdmitWaits %d, AdmitWait %v; want 4 and the time they waited", s.AdmitWaits, s.AdmitWait)
	}
}

// TestAdmitCancelledWaiterPassesItsPlace: a waiting write whose context
// ends leaves the queue, and the write behind it gets the next place.
func TestAdmitCancelledWaiterPassesItsPlace(t *testing.T) {
	e := newEnv(t, &writeback.Options{FlushWriters: 1, FlushStall: -1})
	finish := holdFlush(t, e)
	defer finish()
	r1, ok := admitted(t, e.eng)
	if !ok {
		t.Fatal("first write held back")
	}
	wctx, cancel := context.WithCancel(ctx)
	gone := make(chan error, 1)
	before := e.eng.Stats().AdmitWaits
	go func() {
		_, err := e.eng.Admit(wctx)
		gone <- err
	}()
	for deadline := time.Now().Add(10 * time.Second); e.eng.Stats().AdmitWaits == before; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the write did not wait")
		}
	}
	w := waiter(t, e)
	cancel()
	if err := <-gone; !errors.Is(err, context.Canceled) {
		t.Fatalf("Admit with its context cancelled while waiting: %v, want context.Canceled", err)
	}
	r1()
	admittedBy(t, w, "after the write ahead of it gave up")()
}

// TestAdmitWhileArchiving: an archive step still running after its flush
// (which ended at its budget) bounds the writes too, until it ends.
func TestAdmitWhileArchiving(t *testing.T) {
	e := newEnv(t, &writeback.Options{FlushWriters: 1, FlushBudget: 50 * time.Millisecond, FlushStall: -1})
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
	// An overrun also kicks the engine's own loop, which may commit the
	// generation first: flush until the cache is empty, then wait for the
	// loop's flushes to end.
	for i := 0; e.eng.Stats().CachePoints > 0; i++ {
		if i == 100 {
			t.Fatal("the generation was not committed in 100 flushes")
		}
		e.flush(t)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		if r2, ok := admitted(t, e.eng); ok {
			r2()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("10 s after the archive step ended, a second write is still held back")
		}
	}
	r1()
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
			e := func() *env {
				defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(c.procs))
				return newEnv(t, &writeback.Options{FlushStall: -1}) // the bound is set when the engine is made
			}()
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

// TestAdmitWaitersCapped: while a flush runs, a write beyond FlushWaiters
// waiting ones fails at once with ErrBackPressure; a place in the queue
// freed by an admission takes a new waiter again; a negative FlushWaiters
// caps nothing.
func TestAdmitWaitersCapped(t *testing.T) {
	e := newEnv(t, &writeback.Options{FlushWriters: 1, FlushWaiters: 2, FlushStall: -1})
	finish := holdFlush(t, e)
	r1, ok := admitted(t, e.eng)
	if !ok {
		t.Fatal("first write held back")
	}
	w2, w3 := waiter(t, e), waiter(t, e)
	refused := func(what string) {
		t.Helper()
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second) // a write let wait fails with DeadlineExceeded
		defer cancel()
		if _, err := e.eng.Admit(rctx); !errors.Is(err, tsstore.ErrBackPressure) || !strings.Contains(err.Error(), "FlushWaiters") {
			t.Fatalf("%s: Admit = %v, want ErrBackPressure naming FlushWaiters", what, err)
		}
	}
	refused("with 2 waiting")
	if s := e.eng.Stats(); s.AdmitRefused != 1 || s.AdmitWaits != 2 {
		t.Fatalf("Stats: AdmitRefused %d, AdmitWaits %d; want 1 and 2", s.AdmitRefused, s.AdmitWaits)
	}
	r1()
	r2 := admittedBy(t, w2, "after a release")
	w4 := waiter(t, e) // the queue has room again
	refused("with 2 waiting again")
	finish()
	for _, r := range []func(){r2, admittedBy(t, w3, "at the end of the flush"), admittedBy(t, w4, "at the end of the flush")} {
		r()
	}

	// FlushWaiters -1: 200 writes wait at once, none is refused.
	if n := waitMany(t, &writeback.Options{FlushWriters: 1, FlushWaiters: -1, FlushStall: -1}, 200); n != 200 {
		t.Fatalf("FlushWaiters -1: %d of 200 writes waited, want all", n)
	}
	// FlushWaiters 0: 64 per GOMAXPROCS.
	func() {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
		if n := waitMany(t, &writeback.Options{FlushWriters: 1, FlushStall: -1}, 65); n != 64 {
			t.Fatalf("FlushWaiters 0 at GOMAXPROCS 1: %d of 65 writes waited, want 64", n)
		}
	}()
}

// waitMany makes an engine of o, holds a flush and its one place, and
// lets n writes try to wait in Admit at once; it returns how many waited
// (the others were refused with ErrBackPressure) once each did one or the
// other, then lets them go.
func waitMany(t *testing.T, o *writeback.Options, n int) int {
	t.Helper()
	e, finish := flushingWithPlaceTaken(t, o)
	defer finish()
	wctx, cancel := context.WithCancel(ctx)
	errs := make(chan error, n)
	for range n {
		go func() {
			_, err := e.eng.Admit(wctx)
			errs <- err
		}()
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		if s := e.eng.Stats(); s.AdmitWaits+s.AdmitRefused == int64(n) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 10 s, of %d writes %d waited and %d were refused", n, e.eng.Stats().AdmitWaits, e.eng.Stats().AdmitRefused)
		}
	}
	cancel()
	waited := 0
	for range n {
		switch err := <-errs; {
		case errors.Is(err, context.Canceled):
			waited++
		case !errors.Is(err, tsstore.ErrBackPressure):
			t.Errorf("Admit: %v, want context.Canceled or ErrBackPressure", err)
		}
	}
	return waited
}

// TestAdmitStallLiftsTheBound: flush work that makes no progress for
// FlushStall (here a store Write that hangs, on the engine's clock) holds
// no write back until it progresses again.
func TestAdmitStallLiftsTheBound(t *testing.T) {
	e, finish := flushingWithPlaceTaken(t, &writeback.Options{FlushWriters: 1, FlushStall: time.Minute})
	defer finish()
	if _, ok := admitted(t, e.eng); ok {
		t.Fatal("a second write admitted during a flush with FlushWriters 1")
	}
	e.clock.Advance(time.Minute)
	for i := range 2 {
		r, ok := admitted(t, e.eng)
		if !ok {
			t.Fatalf("write %d held back after the flush made no progress for FlushStall", i+2)
		}
		defer r()
	}
	if s := e.eng.Stats(); s.AdmitStalls != 1 || !s.Flushing {
		t.Errorf("Stats: AdmitStalls %d, Flushing %v; want 1 (one stall) and true", s.AdmitStalls, s.Flushing)
	}
}

// TestAdmitProgressKeepsTheBound: a flush that writes a chunk of cells
// every 40 s of the engine's clock never stalls (FlushStall 1 min), though
// it runs for minutes: the bound holds before every chunk.
func TestAdmitProgressKeepsTheBound(t *testing.T) {
	e := writtenWithPlaceTaken(t, &writeback.Options{FlushWriters: 1, FlushStall: time.Minute, FlushChunk: 1, FlushBudget: time.Hour},
		func(now int64) []tsstore.Point {
			var ps []tsstore.Point
			for i := range 4 {
				ps = append(ps, pt("views", fmt.Sprintf("m%d", i), now-int64(i)*60_000, 1))
			}
			return ps
		})
	writes := 0
	e.store.beforeWrite = func() {
		writes++
		heldBack40s(t, e, fmt.Sprintf("before store write %d", writes))
	}
	defer func() { e.store.beforeWrite = nil }()
	e.clock.Advance(2 * time.Second)
	if _, err := e.eng.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if writes != 4 || e.eng.Stats().AdmitStalls != 0 {
		t.Errorf("%d store writes, %d stalls; want 4 and 0", writes, e.eng.Stats().AdmitStalls)
	}
}

// TestAdmitArchiveProgressKeepsTheBound: an archive step that appends a
// segment every 40 s of the engine's clock (two at a time at most) keeps
// the bound for its 20 minutes, though its flush wrote its cells at the
// start (FlushStall 10 min).
func TestAdmitArchiveProgressKeepsTheBound(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2)) // two appends at a time
	e := writtenWithPlaceTaken(t, &writeback.Options{FlushWriters: 1, FlushStall: 10 * time.Minute, SegmentPoints: 1, FlushBudget: time.Hour},
		func(now int64) []tsstore.Point {
			var ps []tsstore.Point
			for i := range 30 {
				ps = append(ps, pt("views", "m1", now-int64(i), 1))
			}
			return ps
		})
	var appends atomic.Int64
	before := func() {
		heldBack40s(t, e, fmt.Sprintf("before append %d of the first archive's 30", appends.Add(1)))
	}
	e.arch[0].before.Store(&before)
	defer e.arch[0].before.Store(nil)
	e.clock.Advance(2 * time.Second)
	if _, err := e.eng.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if n, s := appends.Load(), e.eng.Stats().AdmitStalls; n != 30 || s != 0 {
		t.Errorf("%d appends to the first archive, %d stalls; want 30 and 0", n, s)
	}
}

// writtenWithPlaceTaken makes an engine of o that has written the points
// points makes at its clock's now, and takes the one place for a write
// while it flushes (before any flush), until the end of the test.
func writtenWithPlaceTaken(t *testing.T, o *writeback.Options, points func(now int64) []tsstore.Point) *env {
	t.Helper()
	e := newEnv(t, o)
	if err := e.eng.Write(ctx, points(e.clock.Millis())); err != nil {
		t.Fatal(err)
	}
	r, ok := admitted(t, e.eng)
	if !ok {
		t.Fatal("a write held back with no flush running")
	}
	t.Cleanup(r)
	return e
}

// heldBack40s advances e's clock 40 s and checks that a second write is
// still held back (the flush work progressed within FlushStall).
func heldBack40s(t *testing.T, e *env, when string) {
	e.clock.Advance(40 * time.Second)
	if r, ok := admitted(t, e.eng); ok {
		r()
		t.Errorf("%s, a second write was admitted: the flush work stalled", when)
	}
}

// flushingWithPlaceTaken makes an engine of o held in a flush's first
// store Write (holdFlush; finish lets it go on), with the one place for a
// write taken, until the end of the test.
func flushingWithPlaceTaken(t *testing.T, o *writeback.Options) (e *env, finish func()) {
	t.Helper()
	e = newEnv(t, o)
	finish = holdFlush(t, e)
	r, ok := admitted(t, e.eng)
	if !ok {
		t.Fatal("first write held back")
	}
	t.Cleanup(r)
	return e, finish
}
