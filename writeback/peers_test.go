package writeback_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/writeback"
)

// newPair returns two engines over one memstore, each the other's peer
// (through EnginePeers, named "a" and "b"), each with its own localcache
// and fault-injecting wrapper of the store. realClock runs them on
// time.Now.
func newPair(t *testing.T, opts *writeback.Options, realClock bool) (a, b *env) {
	peersA, peersB := writeback.EnginePeers{}, writeback.EnginePeers{}
	mk := func(peers writeback.EnginePeers) *env {
		o := writeback.Options{}
		if opts != nil {
			o = *opts
		}
		o.Peers = peers
		return newEnv(t, &o)
	}
	a, b = mk(peersA), mk(peersB)
	b.mem = a.mem
	b.store.Store = a.mem
	if realClock {
		for _, e := range []*env{a, b} {
			e.opts.Now = time.Now
			e.close()
			e.open(t)
		}
	}
	peersA["b"], peersB["a"] = b.eng, a.eng
	return a, b
}

// TestPeersExactDuringFlushes writes through both engines and checks
// every query through either against the oracle: before any flush, while
// the other engine flushes (before each one-cell chunk), after a flush of
// the peer between the query's read of the peers and of the store, and
// after both flushed.
func TestPeersExactDuringFlushes(t *testing.T) {
	a, b := newPair(t, &writeback.Options{FlushChunk: 1}, false)
	now := a.clock.Millis()
	o := newOracle()
	write := func(e *env, merchant string, ts int64, v float64) {
		p := []tsstore.Point{pt("views", merchant, ts, v)}
		if err := e.eng.Write(ctx, p); err != nil {
			t.Fatal(err)
		}
		o.add(p, p)
	}
	// The same merchants through both engines, in the same cells.
	for i := range 6 {
		write(a, "m1", now-int64(i)*60_000, float64(i+1))
		write(b, "m1", now-int64(i)*90_000, float64(10*i+1))
		write(b, "m2", now-int64(i)*60_000, float64(i+3))
	}
	qs := []tsstore.Query{
		{Metric: "views", From: now - time.Hour.Milliseconds(), To: now + 60_000, Step: time.Minute},
		{Metric: "views", From: now - time.Hour.Milliseconds(), To: now + 60_000, Step: 5 * time.Minute, GroupBy: []string{}},
	}
	check := func(what string) {
		t.Helper()
		for _, e := range []*env{a, b} {
			for i, q := range qs {
				got, missing, err := e.eng.QueryDetailed(ctx, q)
				if err != nil {
					t.Fatalf("%s: query %d: %v", what, i, err)
				}
				if len(missing) > 0 {
					t.Errorf("%s: query %d: missing peers %v", what, i, missing)
				}
				if d := diff(o.query(t, q), got); d != "" {
					t.Errorf("%s: query %d (-oracle +engine):\n%s", what, i, d)
				}
			}
			cells, err := e.eng.Cells(ctx, qs[0].Selector())
			if err != nil {
				t.Fatal(err)
			}
			if d := diff(o.query(t, qs[0]), tsstore.Aggregate(&qs[0], cells)); d != "" {
				t.Errorf("%s: Cells (-oracle +engine):\n%s", what, d)
			}
		}
	}
	check("before flushes")

	var during atomic.Int64
	b.store.beforeWrite = func() { check(fmt.Sprintf("during b's flush, chunk %d", during.Add(1))) }
	b.flush(t)
	b.store.beforeWrite = nil
	if during.Load() == 0 {
		t.Fatal("b's flush wrote nothing")
	}
	check("after b's flush")

	// More writes to b, flushed while a's query reads the store: the
	// cells a read from its peer are in the store too and count once.
	write(b, "m1", now, 100)
	write(a, "m1", now, 200)
	flushed := false
	a.store.beforeCells = func() {
		if !flushed {
			flushed = true
			b.flush(t)
		}
	}
	got, err := a.eng.Query(ctx, qs[0])
	a.store.beforeCells = nil
	if err != nil {
		t.Fatal(err)
	}
	if !flushed {
		t.Fatal("a's query did not read the store's cells")
	}
	if d := diff(o.query(t, qs[0]), got); d != "" {
		t.Errorf("a's query across b's flush (-oracle +engine):\n%s", d)
	}
	a.flush(t)
	check("after both flushed")
	if n := a.eng.Stats().PartialAnswers + b.eng.Stats().PartialAnswers; n != 0 {
		t.Errorf("PartialAnswers = %d, want 0", n)
	}
}

// TestPeersMissingIsReported closes one engine: the other's answers name
// it as missing and are counted, and plain Query still answers.
func TestPeersMissingIsReported(t *testing.T) {
	a, b := newPair(t, nil, false)
	now := a.clock.Millis()
	if err := a.eng.Write(ctx, []tsstore.Point{pt("views", "m", now, 1)}); err != nil {
		t.Fatal(err)
	}
	b.close()
	q := tsstore.Query{Metric: "views", From: now - 60_000, To: now + 60_000, Step: time.Minute}
	r, missing, err := a.eng.QueryDetailed(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(missing, []string{"b"}) {
		t.Errorf("QueryDetailed missing = %v, want [b]", missing)
	}
	if len(r.Series) != 1 {
		t.Errorf("QueryDetailed = %+v, want a's own cell", r)
	}
	if _, missing, err := a.eng.CellsDetailed(ctx, q.Selector()); err != nil || !slices.Equal(missing, []string{"b"}) {
		t.Errorf("CellsDetailed missing = %v, %v; want [b]", missing, err)
	}
	if _, err := a.eng.Query(ctx, q); err != nil {
		t.Fatal(err)
	}
	if n := a.eng.Stats().PartialAnswers; n != 3 {
		t.Errorf("PartialAnswers = %d, want 3", n)
	}
}

// TestPartialCountsAnswersOnly: a partial answer is counted when it is
// returned, not when the store read after the peers' then fails; with the
// engine's own cells (a split read) or none (the store alone) alike.
func TestPartialCountsAnswersOnly(t *testing.T) {
	a, b := newPair(t, nil, false)
	now := a.clock.Millis()
	b.close()
	q := tsstore.Query{Metric: "views", From: now - 60_000, To: now + 60_000, Step: time.Minute}
	reads := func() {
		t.Helper()
		if _, _, err := a.eng.QueryDetailed(ctx, q); err != nil && !errors.Is(err, tsstore.ErrUnavailable) {
			t.Fatalf("QueryDetailed: %v", err)
		}
		if _, _, err := a.eng.CellsDetailed(ctx, q.Selector()); err != nil && !errors.Is(err, tsstore.ErrUnavailable) {
			t.Fatalf("CellsDetailed: %v", err)
		}
	}
	for _, cached := range []bool{false, true} {
		if cached {
			if err := a.eng.Write(ctx, []tsstore.Point{pt("views", "m", now, 1)}); err != nil {
				t.Fatal(err)
			}
		}
		before := a.eng.Stats().PartialAnswers
		a.store.failReads.Store(true)
		reads()
		if n := a.eng.Stats().PartialAnswers - before; n != 0 {
			t.Errorf("cached cells %v: %d partial answers counted for reads that failed, want 0", cached, n)
		}
		a.store.failReads.Store(false)
		reads()
		if n := a.eng.Stats().PartialAnswers - before; n != 2 {
			t.Errorf("cached cells %v: %d partial answers counted for two returned, want 2", cached, n)
		}
	}
}

// TestPeersConcurrent writes every merchant through both engines while
// both flush (with failing and half-done store writes) and reads through
// either: each query counts at least the points acknowledged before it and
// at most those sent before it ended.
func TestPeersConcurrent(t *testing.T) {
	a, b := newPair(t, &writeback.Options{FlushChunk: 5, MaxLate: time.Hour}, true)
	engines := []*env{a, b}
	const writers = 4
	var acked, sent [writers]atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	report := func(err error) {
		select {
		case errs <- err:
		default:
		}
	}
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m := fmt.Sprintf("m%d", w)
			for i := range 200 {
				e := engines[(w+i)%2]
				now := time.Now().UnixMilli()
				p := []tsstore.Point{pt("views", m, now-int64(i%5)*60_000, 1), pt("views", m, now, 1)}
				sent[w].Add(2)
				if err := e.eng.Write(ctx, p); err != nil {
					report(err)
					return
				}
				acked[w].Add(2)
			}
		}()
	}
	for _, e := range engines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				e.store.failWrites.Store(i%3 == 1)
				e.store.halfWrites.Store(i%3 == 1)
				_, _ = e.eng.Flush(ctx)
				e.store.failWrites.Store(false)
			}
		}()
	}
	var readers sync.WaitGroup
	for r := range 2 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for i := range 150 {
				w := (i + r) % writers
				e := engines[i%2]
				// A missing peer fails the query: every peer is in process.
				query := func(ctx context.Context, q tsstore.Query) (*tsstore.Result, error) {
					res, missing, err := e.eng.QueryDetailed(ctx, q)
					if err == nil && len(missing) > 0 {
						err = fmt.Errorf("peers %v missing", missing)
					}
					return res, err
				}
				if err := countBetween(ctx, query, w, &acked[w], &sent[w]); err != nil {
					report(err)
					return
				}
			}
		}()
	}
	readers.Wait()
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
