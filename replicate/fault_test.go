package replicate_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hourglass-io/hourglass/internal/servertest"
	"github.com/hourglass-io/hourglass/replicate"
	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/tsstore/influx"
	"github.com/hourglass-io/hourglass/tsstore/memstore"
)

var metrics = []string{"orders", "revenue"}

// testOptions: no background monitor (the tests call Check), one probe
// decides health, short retry backoff.
func testOptions(t testing.TB, ack replicate.Ack) *replicate.Options {
	return &replicate.Options{Dir: t.TempDir(), Ack: ack, ProbeInterval: -1, Fall: 1, Rise: 1,
		RetryBackoff: 20 * time.Millisecond, Logger: quiet}
}

func openStore(t testing.TB, p tsstore.Store, standbys []tsstore.Store, o *replicate.Options) *replicate.Store {
	t.Helper()
	s, err := replicate.New(p, standbys, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func check(t testing.TB, s *replicate.Store) {
	t.Helper()
	if err := s.Check(context.Background()); err != nil {
		t.Fatalf("Check: %v", err)
	}
}

// writeBoth writes batch i to s and, once acknowledged, to the oracle.
func writeBoth(t testing.TB, s *replicate.Store, oracle tsstore.Store, cells []tsstore.Cell) {
	t.Helper()
	if err := s.Write(context.Background(), cells); err != nil {
		t.Fatalf("Write: %v", err)
	}
	if err := oracle.Write(context.Background(), cells); err != nil {
		t.Fatal(err)
	}
}

var influxDBSeq atomic.Int64

// influxBackend opens stores on databases of their own on the test
// InfluxDB server, dropped when the test ends.
func influxBackend(t testing.TB, name string) tsstore.Store {
	u := servertest.InfluxURL(t)
	db := fmt.Sprintf("hg_repl_%d_%d_%s", os.Getpid(), influxDBSeq.Add(1), name)
	s, err := influx.Open(u, &influx.Options{Database: db, WriteAPI: influx.WriteV1})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.EnsureDatabase(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = s.Close()
		c := &http.Client{Transport: &http.Transport{}}
		if resp, err := c.PostForm(u+"/query", url.Values{"q": {"DROP DATABASE " + db}}); err == nil {
			_ = resp.Body.Close()
		}
		c.CloseIdleConnections()
	})
	return s
}

// A standby that is down while writes are acknowledged gets hints, and
// once back is caught up exactly (compared with the oracle).
func TestStandbyDownThenBack(t *testing.T) {
	eachBackend(t, func(t *testing.T, open backend) {
		p, sb := newReplica(t, open, "p"), newReplica(t, open, "s")
		s := openStore(t, p, []tsstore.Store{sb}, testOptions(t, replicate.AckPrimary))
		oracle := memstore.New(nil)
		writeBoth(t, s, oracle, batch(t, 0, 3, metrics...))
		eventually(t, "standby applies the first write", func() bool { return caughtUp(s, "r1") })

		sb.down.Store(true)
		check(t, s)
		for i := 1; i <= 20; i++ {
			writeBoth(t, s, oracle, batch(t, i, 3, metrics...))
		}
		st := replicaStats(s, "r1")
		if st.Healthy || st.HintRecords == 0 || st.HintBytes == 0 || st.OldestHint <= 0 || st.HintFileBytes == 0 {
			t.Fatalf("down standby after 20 writes: %+v, want unhealthy with hints", st)
		}
		// Reads are served meanwhile by the primary.
		if _, err := s.Cells(context.Background(), tsstore.Selector{Metric: "orders", From: 0, To: tsstore.MaxTimestamp}); err != nil {
			t.Fatalf("read while the standby is down: %v", err)
		}

		sb.down.Store(false)
		check(t, s)
		eventually(t, "standby catches up", func() bool { return caughtUp(s, "r1") })
		sameCells(t, "standby", sb.inner, oracle, metrics...)
		sameCells(t, "primary", p.inner, oracle, metrics...)
		if st := replicaStats(s, "r1"); st.HintFileBytes != 0 && st.HintRecords == 0 && st.HintFileBytes > replicate.DefaultHintSegmentBytes {
			t.Errorf("hint files not released after catch-up: %+v", st)
		}
	})
}

// Hints are on disk: a Store closed while a standby is down, reopened on
// the same Dir, replays them when the standby is back.
func TestHintsSurviveRestart(t *testing.T) {
	p, sb := newReplica(t, promBackend, "p"), newReplica(t, promBackend, "s")
	o := testOptions(t, replicate.AckPrimary)
	s, err := replicate.New(p, []tsstore.Store{sb}, o)
	if err != nil {
		t.Fatal(err)
	}
	oracle := memstore.New(nil)
	sb.down.Store(true)
	check(t, s)
	for i := range 10 {
		writeBoth(t, s, oracle, batch(t, i, 4, metrics...))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	sb.down.Store(false)
	s2 := openStore(t, p, []tsstore.Store{sb}, o)
	if st := replicaStats(s2, "r1"); st.HintRecords != 10 {
		t.Fatalf("reopened store has %d hints for the standby, want the 10 writes", st.HintRecords)
	}
	check(t, s2)
	eventually(t, "standby catches up after the restart", func() bool { return caughtUp(s2, "r1") })
	sameCells(t, "standby", sb.inner, oracle, metrics...)
}

// Over the hint budget the standby is marked stale (persisted across a
// restart) and, once back, re-synced from the primary.
func TestHintBudgetExhausted(t *testing.T) {
	p, sb := newReplica(t, promBackend, "p"), newReplica(t, promBackend, "s")
	o := testOptions(t, replicate.AckPrimary)
	o.HintBudget = 4 << 10
	s, err := replicate.New(p, []tsstore.Store{sb}, o)
	if err != nil {
		t.Fatal(err)
	}
	oracle := memstore.New(nil)
	writeBoth(t, s, oracle, batch(t, 0, 5, metrics...))
	eventually(t, "standby applies the first write", func() bool { return caughtUp(s, "r1") })
	sb.down.Store(true)
	check(t, s)
	for i := 1; i <= 40; i++ {
		writeBoth(t, s, oracle, batch(t, i, 5, metrics...))
	}
	st := replicaStats(s, "r1")
	if !st.Stale || st.HintBytes > o.HintBudget {
		t.Fatalf("standby after 40 writes over a 4 KiB budget: %+v, want stale within the budget", st)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// The stale mark survives a restart.
	s2 := openStore(t, p, []tsstore.Store{sb}, o)
	if !replicaStats(s2, "r1").Stale {
		t.Fatal("the stale mark was lost by the restart")
	}
	// A stale replica is never read, even with no requirement.
	writeBoth(t, s2, oracle, batch(t, 41, 5, metrics...))
	sb.down.Store(false)
	check(t, s2)
	eventually(t, "standby re-synced", func() bool { return caughtUp(s2, "r1") })
	sameCells(t, "re-synced standby", sb.inner, oracle, metrics...)
}

// The primary is killed at ack level primary+1: a caught-up standby is
// promoted at epoch 2, no acknowledged write is lost. The old primary
// returns: a second Store with the stale view is refused (fenced), the
// old primary is fenced and caught up, and fail-back is explicit.
func TestPrimaryKilledFailoverFencing(t *testing.T) {
	ctx := context.Background()
	// Three replicas: after the failover the new primary still has a
	// standby to meet primary+1 with.
	p, sb, s2 := newReplica(t, promBackend, "p"), newReplica(t, promBackend, "s"), newReplica(t, promBackend, "s2")
	ao, bo := testOptions(t, replicate.AckPrimaryPlus(1)), testOptions(t, replicate.AckPrimaryPlus(1))
	// a's applier retries the old primary only when a check finds it back
	// (not on a timer): b's write must reach it before a fences it.
	ao.RetryBackoff = time.Hour
	a := openStore(t, p, []tsstore.Store{sb, s2}, ao)
	// b is another writer with the same view; it will miss the failover.
	b := openStore(t, p, []tsstore.Store{sb, s2}, bo)
	oracle := memstore.New(nil)
	for i := range 10 {
		writeBoth(t, a, oracle, batch(t, i, 4, metrics...))
	}
	acked := a.LastAcked()

	p.down.Store(true)
	failed := batch(t, 10, 4, metrics...)
	err := a.Write(ctx, failed)
	if !errors.Is(err, tsstore.ErrUnavailable) {
		t.Fatalf("write with the primary down: %v, want ErrUnavailable", err)
	}
	check(t, a) // the primary fails its probe: promotion
	st := a.Stats()
	if st.Epoch != 2 || st.Promotions != 1 || st.Primary == "r0" {
		t.Fatalf("after the primary died: %+v, want a standby primary at epoch 2", st)
	}
	if sb.Epoch() != 2 || s2.Epoch() != 2 {
		t.Fatalf("standby fences at %d and %d after the promotion, want 2", sb.Epoch(), s2.Epoch())
	}
	if a.LastAcked() != acked {
		t.Fatalf("LastAcked moved from %d to %d without an ack", acked, a.LastAcked())
	}
	// The failed write is retried (as the write-back engine does) and
	// lands on the new primary; new writes too.
	writeBoth(t, a, oracle, failed)
	for i := 11; i < 20; i++ {
		writeBoth(t, a, oracle, batch(t, i, 4, metrics...))
	}
	eventually(t, "standbys catch up", func() bool { return caughtUp(a, "r1") && caughtUp(a, "r2") })
	sameCells(t, "standby r1", sb.inner, oracle, metrics...)
	sameCells(t, "standby r2", s2.inner, oracle, metrics...)

	// The old primary returns. b still believes in it at epoch 1: its
	// write reaches the old primary (not fenced yet: it was down) but the
	// standby refuses it, so it is not acknowledged, and b is fenced.
	p.down.Store(false)
	staleCells := batch(t, 30, 2, "stale")
	err = b.Write(ctx, staleCells)
	if !errors.Is(err, tsstore.ErrConflict) || !errors.Is(err, replicate.ErrFenced) {
		t.Fatalf("write of the stale writer: %v, want ErrConflict wrapping ErrFenced", err)
	}
	if !b.Stats().Fenced {
		t.Fatal("the stale writer is not fenced after a refusal")
	}
	if err := b.Write(ctx, batch(t, 31, 2, "stale")); !errors.Is(err, replicate.ErrFenced) {
		t.Fatalf("second write of the fenced writer: %v, want ErrFenced", err)
	}
	// a finds the old primary back: fences it, replays its hints.
	check(t, a)
	if p.Epoch() != 2 {
		t.Fatalf("old primary's fence at epoch %d after a's check, want 2", p.Epoch())
	}
	if err := p.WriteEpoch(ctx, 1, staleCells); !errors.Is(err, replicate.ErrFenced) {
		t.Fatalf("write at epoch 1 to the fenced old primary: %v, want ErrFenced", err)
	}
	eventually(t, "old primary catches up", func() bool { return caughtUp(a, "r0") })
	sameCells(t, "old primary", p.inner, oracle, metrics...)
	// The standby never got the stale writer's cells; the old primary got
	// the one write it accepted before it was fenced, unacknowledged (see
	// the package comment).
	sel := tsstore.Selector{Metric: "stale", From: 0, To: tsstore.MaxTimestamp}
	for _, r := range []*faulty{sb, s2} {
		if cs, err := r.inner.Cells(ctx, sel); err != nil || len(cs) != 0 {
			t.Fatalf("%s has %d cells of the fenced writer (err %v), want none", r.name, len(cs), err)
		}
	}
	if cs, err := p.inner.Cells(ctx, sel); err != nil || len(cs) != len(staleCells) {
		t.Fatalf("old primary has %d cells of the fenced writer (err %v), want the %d of its unacknowledged write", len(cs), err, len(staleCells))
	}

	// Explicit fail-back.
	fctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := a.FailBack(fctx, "r0"); err != nil {
		t.Fatal(err)
	}
	if st := a.Stats(); st.Primary != "r0" || st.Epoch != 3 {
		t.Fatalf("after fail-back: %+v, want r0 primary at epoch 3", st)
	}
	for i := 20; i < 25; i++ {
		writeBoth(t, a, oracle, batch(t, i, 4, metrics...))
	}
	sameCells(t, "primary after fail-back", p.inner, oracle, metrics...)
	eventually(t, "standbys catch up after fail-back", func() bool { return caughtUp(a, "r1") && caughtUp(a, "r2") })
	sameCells(t, "standby after fail-back", sb.inner, oracle, metrics...)

	// Restarts: a keeps its epoch and primary; b, restarted with its stale
	// state, is fenced from the start.
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	a = openStore(t, p, []tsstore.Store{sb, s2}, ao)
	if st := a.Stats(); st.Primary != "r0" || st.Epoch != 3 || st.Fenced {
		t.Fatalf("a after a restart: %+v, want r0 primary at epoch 3", st)
	}
	writeBoth(t, a, oracle, batch(t, 25, 4, metrics...))
	b = openStore(t, p, []tsstore.Store{sb, s2}, bo)
	if err := b.Write(ctx, batch(t, 32, 2, "stale")); !errors.Is(err, replicate.ErrFenced) {
		t.Fatalf("write of the restarted stale writer: %v, want ErrFenced", err)
	}
}

// A write fails when a standby the ack level needs is down (and the error
// names it); it is acknowledged otherwise. Either way the down standby
// gets the hint.
func TestAckLevels(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		ack     replicate.Ack
		down    []int // standbys down
		wantErr bool
	}{
		{replicate.AckPrimary, []int{0, 1}, false},
		{replicate.AckPrimaryPlus(1), []int{0}, false},
		{replicate.AckPrimaryPlus(1), []int{0, 1}, true},
		{replicate.AckQuorum, []int{0}, false},
		{replicate.AckQuorum, []int{0, 1}, true},
		{replicate.AckAll, []int{0}, true},
	} {
		t.Run(fmt.Sprint(tc.ack, tc.down), func(t *testing.T) {
			ss := []*faulty{newReplica(t, memBackend, "s1"), newReplica(t, memBackend, "s2")}
			s := openStore(t, newReplica(t, memBackend, "p"), []tsstore.Store{ss[0], ss[1]}, testOptions(t, tc.ack))
			if err := s.Write(ctx, batch(t, 0, 2, "orders")); err != nil {
				t.Fatal(err)
			}
			eventually(t, "standbys catch up", func() bool { return caughtUp(s, "r1") && caughtUp(s, "r2") })
			for _, i := range tc.down {
				ss[i].down.Store(true)
			}
			check(t, s)
			err := s.Write(ctx, batch(t, 1, 2, "orders"))
			if tc.wantErr {
				if !errors.Is(err, tsstore.ErrUnavailable) || !strings.Contains(err.Error(), "replica r1") {
					t.Fatalf("write: %v, want ErrUnavailable naming r1", err)
				}
			} else if err != nil {
				t.Fatalf("write: %v", err)
			}
			if st := replicaStats(s, "r1"); st.HintRecords != 1 {
				t.Fatalf("down standby has %d hints, want 1", st.HintRecords)
			}
		})
	}
}

// Read-your-writes: a read that requires a write goes only to a replica
// that applied it.
func TestReadYourWrites(t *testing.T) {
	ctx := context.Background()
	p, sb := newReplica(t, memBackend, "p"), newReplica(t, memBackend, "s")
	o := testOptions(t, replicate.AckPrimary)
	o.AckTimeout = 200 * time.Millisecond
	s := openStore(t, p, []tsstore.Store{sb}, o)
	sb.down.Store(true)
	check(t, s)
	seq, err := s.WriteSeq(ctx, batch(t, 0, 2, "orders"))
	if err != nil {
		t.Fatal(err)
	}
	sel := tsstore.Selector{Metric: "orders", From: 0, To: tsstore.MaxTimestamp}
	cs, err := s.Cells(replicate.WithMinSeq(ctx, seq), sel)
	if err != nil || len(cs) != 2 {
		t.Fatalf("read-your-writes with the standby down: %d cells, %v", len(cs), err)
	}
	// The primary goes down; the standby answers but cannot apply yet:
	// no replica that answers has applied seq, and none is promoted.
	// (writesDown first: the standby must not apply seq in between.)
	p.down.Store(true)
	sb.writesDown.Store(true)
	sb.down.Store(false)
	check(t, s)
	if _, err := s.Cells(replicate.WithMinSeq(ctx, seq), sel); !errors.Is(err, tsstore.ErrUnavailable) {
		t.Fatalf("read requiring seq %d with only a behind standby: %v, want ErrUnavailable", seq, err)
	}
	if st := s.Stats(); st.Primary != "r0" {
		t.Fatalf("a standby that is behind was promoted: %+v", st)
	}
	// Without a requirement the behind standby may answer.
	if _, err := s.Cells(replicate.WithMinSeq(ctx, 0), sel); err != nil {
		t.Fatalf("read without requirement: %v", err)
	}
	sb.writesDown.Store(false)
	check(t, s)
	eventually(t, "standby catches up", func() bool { return replicaStats(s, "r1").Applied >= seq })
	cs, err = s.Cells(replicate.WithMinSeq(ctx, seq), sel)
	if err != nil || len(cs) != 2 {
		t.Fatalf("read from the caught-up standby: %d cells, %v", len(cs), err)
	}
}
