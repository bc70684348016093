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

// A slow archive does not hold a flush past its budget: the flush halts the
// archive step (the segments in flight finish), reports an overrun and
// leaves the generation sealed; the next flushes resume after the segments
// already appended, so none is appended twice, and the generation commits
// once every archive has every segment.
func TestArchiveStepStopsAtTheBudget(t *testing.T) {
	e := newEnv(t, &writeback.Options{FlushBudget: 300 * time.Millisecond, SegmentPoints: 10})
	for _, a := range e.arch {
		a.slow.Store(int64(100 * time.Millisecond))
	}
	now := e.clock.Millis()
	var b []tsstore.Point
	for i := range 200 {
		b = append(b, pt("views", fmt.Sprintf("m%d", i%7), now-int64(i)*1000, float64(i)))
	}
	if err := e.eng.Write(ctx, b); err != nil {
		t.Fatal(err)
	}
	// 2 archives × 20 segments × 100 ms, two at a time: 2 s, against a
	// budget of 300 ms.
	rep := e.flush(t)
	if !rep.Overrun || len(rep.Committed) != 0 {
		t.Fatalf("first flush: %+v; want an overrun and nothing committed", rep)
	}
	if rep.Duration > 10*time.Second {
		t.Fatalf("first flush took %v: it waited for the whole archive step", rep.Duration)
	}
	flushes := 1
	for ; rep.Overrun && flushes < 100; flushes++ {
		rep = e.flush(t)
	}
	if rep.Overrun || len(rep.Committed) != 1 {
		t.Fatalf("after %d flushes: %+v; want the generation committed", flushes, rep)
	}
	for i, a := range e.arch {
		counts := a.appendCounts()
		if len(counts) != 20 {
			t.Errorf("archive %d: %d segments appended, want 20", i, len(counts))
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
