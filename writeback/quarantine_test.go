package writeback_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/writeback"
)

// TestQuarantine has the store refuse one merchant's cell for good: every
// other cell of that generation and of later ones lands, the refused cell
// is listed (also after a crash and restart), and it lands and leaves the
// quarantine when resubmitted once the store accepts it.
func TestQuarantine(t *testing.T) {
	e := newEnv(t, &writeback.Options{FlushChunk: 4})
	now := e.clock.Millis()
	o := newOracle()
	write := func(ps []tsstore.Point) {
		t.Helper()
		if err := e.eng.Write(ctx, ps); err != nil {
			t.Fatal(err)
		}
		o.add(ps, ps)
	}
	var b []tsstore.Point
	for m := range 10 {
		b = append(b, pt("views", fmt.Sprintf("m%d", m), now-1000, float64(m+1)), pt("views", fmt.Sprintf("m%d", m), now-61_000, 100))
	}
	b = append(b, pt("views", "bad", now-1000, 7))
	write(b)
	bad := func(c *tsstore.Cell) bool { return c.Labels.Get("merchant") == "bad" }
	e.store.refuseWhere(bad)
	rep := e.flush(t)
	if len(rep.Committed) != 1 || rep.Quarantined != 1 || rep.Cells != 20 {
		t.Fatalf("flush report %+v: want the generation committed, 20 cells written, 1 quarantined", rep)
	}
	q := tsstore.Query{Metric: "views", From: now - time.Hour.Milliseconds(), To: now + 60_000, Step: time.Minute}
	sel := tsstore.Query{Metric: "views", Matchers: []tsstore.Matcher{{Type: tsstore.MatchNotEqual, Name: "merchant", Value: "bad"}}, From: q.From, To: q.To, Step: q.Step}
	checkStore := func(when string, q tsstore.Query) {
		t.Helper()
		got, err := e.mem.Query(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if d := diff(o.query(t, q), got); d != "" {
			t.Errorf("%s: store (-oracle +store):\n%s", when, d)
		}
	}
	checkStore("after the flush, every cell but the refused one", sel)
	listed := func(when string, n int) []writeback.QuarantinedCell {
		t.Helper()
		qs, err := e.eng.Quarantined(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(qs) != n {
			t.Fatalf("%s: %d quarantined cells, want %d: %+v", when, len(qs), n, qs)
		}
		for _, qc := range qs {
			if !bad(&qc.Cell) || qc.Cell.Writer != e.eng.WriterID() || qc.Cell.Count != 1 || !strings.Contains(qc.Reason, "refused for good") || qc.Time.IsZero() {
				t.Errorf("%s: quarantined %+v", when, qc)
			}
		}
		return qs
	}
	listed("after the flush", 1)
	if st := e.eng.Stats(); st.QuarantinedCells != 1 || st.Quarantine != 1 || st.SealedGenerations != 0 || st.FlushErrors != 0 {
		t.Errorf("Stats = %+v: want 1 quarantined, 1 in the quarantine, nothing sealed, no flush error", st)
	}

	// A later generation with the refused merchant in it flushes too.
	write([]tsstore.Point{pt("views", "m1", now, 5), pt("views", "bad", now, 1), pt("views", "m9", now-1000, 5)})
	rep = e.flush(t)
	if len(rep.Committed) != 1 || rep.Quarantined != 1 || rep.Cells != 2 {
		t.Fatalf("second flush report %+v", rep)
	}
	checkStore("after the second flush", sel)
	listed("after the second flush", 2)

	e.crash(t)
	listed("after a crash and restart", 2)
	res, err := e.eng.Resubmit(ctx)
	if err != nil || len(res.Landed) != 0 || len(res.Refused) != 2 {
		t.Fatalf("Resubmit while the store still refuses = %+v, %v; want 2 refused", res, err)
	}
	listed("after a refused resubmit", 2)

	e.store.refuseWhere(nil)
	qs := listed("before the resubmit", 2)
	res, err = e.eng.Resubmit(ctx, qs[0].Cell.ID())
	if err != nil || len(res.Landed) != 1 || len(res.Refused) != 0 {
		t.Fatalf("Resubmit of one cell = %+v, %v; want it landed", res, err)
	}
	listed("after resubmitting one", 1)
	if res, err = e.eng.Resubmit(ctx); err != nil || len(res.Landed) != 1 {
		t.Fatalf("Resubmit of the rest = %+v, %v", res, err)
	}
	listed("after resubmitting all", 0)
	checkStore("after the resubmits, everything", q)
	if st := e.eng.Stats(); st.Quarantine != 0 {
		t.Errorf("Stats.Quarantine = %d after the resubmits", st.Quarantine)
	}
}

// plainCache hides the QuarantineCache capability of the cache it wraps.
type plainCache struct{ writeback.Cache }

// TestQuarantineNeedsTheCapability checks that a cache without the
// capability keeps the old behaviour, with an error that says why.
func TestQuarantineNeedsTheCapability(t *testing.T) {
	e := newEnv(t, nil)
	_ = e.eng.Close()
	eng, err := writeback.New(plainCache{e.cache}, e.store, &e.opts)
	if err != nil {
		t.Fatal(err)
	}
	e.eng = eng
	if err := eng.Write(ctx, []tsstore.Point{pt("views", "bad", e.clock.Millis(), 1)}); err != nil {
		t.Fatal(err)
	}
	e.store.refuseWhere(func(*tsstore.Cell) bool { return true })
	_, err = eng.Flush(ctx)
	if !errors.Is(err, tsstore.ErrConflict) || !strings.Contains(err.Error(), "cannot quarantine") {
		t.Errorf("Flush = %v; want the conflict, saying the cache cannot quarantine", err)
	}
	if st := eng.Stats(); st.SealedGenerations != 1 {
		t.Errorf("%d sealed generations, want the refused one kept", st.SealedGenerations)
	}
	e.store.refuseWhere(nil)
}

// TestFencedIsNotQuarantined: a store that refuses a write because a newer
// epoch fenced the writer (a conflict about the writer, not the cells)
// keeps the generation sealed and retried; nothing is quarantined, and the
// cells land once the store takes writes again.
func TestFencedIsNotQuarantined(t *testing.T) {
	e := newEnv(t, nil)
	if err := e.eng.Write(ctx, []tsstore.Point{pt("views", "m1", e.clock.Millis(), 1), pt("views", "m2", e.clock.Millis(), 2)}); err != nil {
		t.Fatal(err)
	}
	e.store.fenced.Store(true)
	if _, err := e.eng.Flush(ctx); !errors.Is(err, tsstore.ErrFenced) {
		t.Fatalf("Flush into a fenced store = %v; want the fenced error", err)
	}
	if st := e.eng.Stats(); st.SealedGenerations != 1 || st.QuarantinedCells != 0 || st.Quarantine != 0 {
		t.Fatalf("after a fenced flush: %d sealed generations, %d cells quarantined (%d held); want 1 and 0", st.SealedGenerations, st.QuarantinedCells, st.Quarantine)
	}
	if q, err := e.eng.Quarantined(ctx); err != nil || len(q) != 0 {
		t.Fatalf("Quarantined = %v, %v; want none", q, err)
	}
	e.store.fenced.Store(false)
	if _, err := e.eng.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if got := e.mem.Len(); got != 2 {
		t.Errorf("the store holds %d cells after the retry, want 2", got)
	}
}
