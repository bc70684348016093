package writeback_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/writeback"
)

// A slow archive does not hold a flush past its budget: the flush returns
// at the deadline with an overrun, the generation still sealed, and its
// archive step still running; the next flushes wait for the same step, so
// no segment is appended twice, and the generation commits once every
// archive has every segment.
func TestArchiveStepStopsAtTheBudget(t *testing.T) {
	e := newEnv(t, &writeback.Options{FlushBudget: 300 * time.Millisecond, SegmentPoints: 10})
	gate := make(chan struct{})
	for _, a := range e.arch {
		a.gate.Store(&gate)
	}
	now := e.clock.Millis()
	var b []tsstore.Point
	for i := range 200 {
		b = append(b, pt("views", fmt.Sprintf("m%d", i%7), now-int64(i)*1000, float64(i)))
	}
	if err := e.eng.Write(ctx, b); err != nil {
		t.Fatal(err)
	}
	// The archives hold every append until the gate opens.
	rep := e.flush(t)
	if !rep.Overrun || len(rep.Committed) != 0 {
		t.Fatalf("first flush: %+v; want an overrun and nothing committed", rep)
	}
	// Writes that come while the generation waits stay in the open one: a
	// flush that continues a backlog does not seal.
	more := []tsstore.Point{pt("views", "m0", now-500, 1)}
	if err := e.eng.Write(ctx, more); err != nil {
		t.Fatal(err)
	}
	if rep := e.flush(t); !rep.Overrun {
		t.Fatalf("second flush with the archives held: %+v, want an overrun", rep)
	}
	if st := e.eng.Stats(); st.SealedGenerations != 1 {
		t.Errorf("a flush continuing a backlog sealed again: %d sealed generations, want 1", st.SealedGenerations)
	}
	b = append(b, more...)
	close(gate)
	// An overrun also kicks the engine's own loop, which may commit the
	// generation between two of these flushes.
	flushes := 2
	for ; e.eng.Stats().CachePoints > 0 && flushes < 100; flushes++ {
		e.flush(t)
	}
	if st := e.eng.Stats(); st.CachePoints != 0 {
		t.Fatalf("after %d flushes the cache holds %d points, want the generation committed", flushes, st.CachePoints)
	}
	for i, a := range e.arch {
		counts := a.appendCounts()
		if len(counts) != 21 {
			t.Errorf("archive %d: %d segments appended, want 20 and 1 of the later write", i, len(counts))
		}
		for name, n := range counts {
			if n != 1 {
				t.Errorf("archive %d: segment %s appended %d times over %d flushes, want once", i, name, n, flushes)
			}
		}
		if diff := cmp.Diff(b, a.points(), cmpopts.SortSlices(func(x, y tsstore.Point) bool { return x.Timestamp < y.Timestamp })); diff != "" {
			t.Errorf("archive %d points (-want +got):\n%s", i, diff)
		}
	}
	if st := e.eng.Stats(); st.CachePoints != 0 || st.BudgetOverruns == 0 {
		t.Errorf("stats %+v: want an empty cache and the overruns counted", st)
	}
}

// An archive step that fails is started again by the next flush, which
// skips the segments the failed pass appended.
func TestArchiveStepResumesAfterAFailure(t *testing.T) {
	e := newEnv(t, &writeback.Options{FlushBudget: time.Minute, SegmentPoints: 10})
	e.arch[0].failFrom.Store(5) // the first four appends get through
	now := e.clock.Millis()
	var b []tsstore.Point
	for i := range 200 {
		b = append(b, pt("views", fmt.Sprintf("m%d", i%7), now-int64(i)*1000, float64(i)))
	}
	if err := e.eng.Write(ctx, b); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(2 * time.Second)
	if _, err := e.eng.Flush(ctx); err == nil {
		t.Fatal("flush with a failing archive: no error")
	}
	before := len(e.arch[0].appendCounts())
	e.arch[0].failFrom.Store(0)
	for i := 0; i < 100 && e.eng.Stats().CachePoints > 0; i++ {
		e.clock.Advance(2 * time.Second)
		_, _ = e.eng.Flush(ctx)
	}
	if st := e.eng.Stats(); st.CachePoints != 0 {
		t.Fatalf("the cache still holds %d points", st.CachePoints)
	}
	counts := e.arch[0].appendCounts()
	if before == 0 || len(counts) != 20 {
		t.Fatalf("%d segments before the failure, %d after; want some, then 20", before, len(counts))
	}
	for name, n := range counts {
		if n != 1 {
			t.Errorf("segment %s appended %d times, want once", name, n)
		}
	}
}

// Close stops an archive step that outlives the final flush (goleak, in
// TestMain, checks that its goroutines are gone); the generation stays in
// the cache and the next start archives and commits it.
func TestCloseStopsARunningArchiveStep(t *testing.T) {
	e := newEnv(t, &writeback.Options{FlushBudget: 200 * time.Millisecond, SegmentPoints: 10})
	e.arch[0].slow.Store(int64(time.Second))
	now := e.clock.Millis()
	var b []tsstore.Point
	for i := range 100 {
		b = append(b, pt("views", "m1", now-int64(i)*1000, 1))
	}
	if err := e.eng.Write(ctx, b); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(2 * time.Second)
	if err := e.eng.Close(); err == nil {
		t.Fatal("Close with a 10 s archive step and a 200 ms budget: no error")
	}
	if n := len(e.arch[0].appendCounts()); n == 10 {
		t.Errorf("Close waited for the whole archive step (%d segments), want it stopped", n)
	}
	if err := e.cache.Close(); err != nil {
		t.Fatal(err)
	}
	e.arch[0].slow.Store(0)
	e.open(t)
	e.flush(t)
	if st := e.eng.Stats(); st.CachePoints != 0 {
		t.Fatalf("after the restart's flush the cache holds %d points", st.CachePoints)
	}
	if got := len(e.arch[0].points()); got != len(b) {
		t.Errorf("archive 0 has %d points, want %d", got, len(b))
	}
}
