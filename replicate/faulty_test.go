package replicate_test

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/hourglass-io/hourglass/internal/servertest"
	"github.com/hourglass-io/hourglass/replicate"
	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/tsstore/memstore"
	"github.com/hourglass-io/hourglass/tsstore/promtsdb"
)

// faulty is a fault-injecting replica: while down, every call fails with
// tsstore.ErrUnavailable, as a crashed or unreachable server would. It
// passes fencing through to the *replicate.Fenced it wraps, so a down
// replica cannot be fenced either.
type faulty struct {
	name  string
	inner *replicate.Fenced
	down  atomic.Bool
	// writesDown fails writes (and fencing) only: a replica that answers
	// probes but cannot apply.
	writesDown atomic.Bool
	// writes counts Write calls that reached the inner store.
	writes atomic.Int64
}

var (
	_ tsstore.Store    = (*faulty)(nil)
	_ replicate.Fencer = (*faulty)(nil)
)

func (f *faulty) err(op string) error {
	if f.down.Load() {
		return tsstore.Errorf(tsstore.ErrUnavailable, "%s: %s: injected outage", f.name, op)
	}
	return nil
}

func (f *faulty) writeErr() error {
	if f.writesDown.Load() {
		return tsstore.Errorf(tsstore.ErrUnavailable, "%s: write: injected write outage", f.name)
	}
	return f.err("write")
}

func (f *faulty) WriteEpoch(ctx context.Context, epoch uint64, cells []tsstore.Cell) error {
	if err := f.writeErr(); err != nil {
		return err
	}
	f.writes.Add(1)
	return f.inner.WriteEpoch(ctx, epoch, cells)
}

func (f *faulty) Fence(ctx context.Context, epoch uint64) error {
	if err := f.writeErr(); err != nil {
		return err
	}
	return f.inner.Fence(ctx, epoch)
}

func (f *faulty) Epoch() uint64 { return f.inner.Epoch() }

func (f *faulty) Write(ctx context.Context, cells []tsstore.Cell) error {
	if err := f.writeErr(); err != nil {
		return err
	}
	return f.inner.Write(ctx, cells)
}

func (f *faulty) Query(ctx context.Context, q tsstore.Query) (*tsstore.Result, error) {
	if err := f.err("query"); err != nil {
		return nil, err
	}
	return f.inner.Query(ctx, q)
}

func (f *faulty) Cells(ctx context.Context, sel tsstore.Selector) ([]tsstore.Cell, error) {
	if err := f.err("cells"); err != nil {
		return nil, err
	}
	return f.inner.Cells(ctx, sel)
}

func (f *faulty) CellWidth() time.Duration { return f.inner.CellWidth() }
func (f *faulty) Close() error             { return nil } // the test closes inner

// backend opens the raw stores of the fault tests.
type backend func(t testing.TB, name string) tsstore.Store

// eachBackend runs f as a subtest on promtsdb, and on InfluxDB (skipped
// without the test server, failed under CI=true).
func eachBackend(t *testing.T, f func(t *testing.T, open backend)) {
	for _, tc := range []struct {
		name string
		open backend
	}{{"promtsdb", promBackend}, {"influx", influxBackend}} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "influx" {
				servertest.InfluxURL(t)
			}
			f(t, tc.open)
		})
	}
}

func promBackend(t testing.TB, name string) tsstore.Store {
	s, err := promtsdb.Open(filepath.Join(t.TempDir(), name), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func memBackend(t testing.TB, _ string) tsstore.Store {
	s := memstore.New(nil)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// newReplica opens a fenced, fault-injecting replica on open.
func newReplica(t testing.TB, open backend, name string) *faulty {
	t.Helper()
	fs, err := replicate.NewFenced(open(t, name), filepath.Join(t.TempDir(), name+".epoch"))
	if err != nil {
		t.Fatal(err)
	}
	return &faulty{name: name, inner: fs}
}

var base = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()

// batch returns the cells of batch i: for each of merchants series of the
// metrics, one cell in minute i (the value says which batch wrote it).
func batch(t testing.TB, i int, merchants int, metrics ...string) []tsstore.Cell {
	var cells []tsstore.Cell
	for _, m := range metrics {
		for k := range merchants {
			ls, err := tsstore.NewLabels("merchant", fmt.Sprintf("m%d", k))
			if err != nil {
				t.Fatal(err)
			}
			v := float64(i*1000 + k)
			cells = append(cells, tsstore.Cell{Metric: m, Labels: ls, Start: base + int64(i)*60_000,
				Agg: tsstore.Agg{Count: 2, Sum: 2*v + 1, Min: v, Max: v + 1}})
		}
	}
	return cells
}

// sameCells fails t unless store holds exactly the cells of oracle for
// the metrics, over all time.
func sameCells(t testing.TB, what string, store, oracle tsstore.Store, metrics ...string) {
	t.Helper()
	for _, m := range metrics {
		sel := tsstore.Selector{Metric: m, From: 0, To: tsstore.MaxTimestamp}
		got, err := store.Cells(context.Background(), sel)
		if err != nil {
			t.Fatalf("%s: Cells(%s): %v", what, m, err)
		}
		want, err := oracle.Cells(context.Background(), sel)
		if err != nil {
			t.Fatal(err)
		}
		sortCells(got)
		sortCells(want)
		if d := cmp.Diff(want, got); d != "" {
			t.Fatalf("%s: cells of %s differ from the oracle (-want +got):\n%s", what, m, d)
		}
	}
}

func sortCells(cs []tsstore.Cell) {
	slices.SortFunc(cs, func(a, b tsstore.Cell) int {
		if c := a.Labels.Compare(b.Labels); c != 0 {
			return c
		}
		if a.Start != b.Start {
			return int(a.Start - b.Start)
		}
		return int(a.Seq) - int(b.Seq)
	})
}

// eventually polls cond every 10 ms until it holds, failing t after a
// generous deadline (a hang, not a timing assertion).
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reached after 30s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func replicaStats(s *replicate.Store, name string) replicate.ReplicaStats {
	for _, r := range s.Stats().Replicas {
		if r.Name == name {
			return r
		}
	}
	return replicate.ReplicaStats{}
}

// caughtUp reports whether the replica applied every acknowledged write
// and holds no hint.
func caughtUp(s *replicate.Store, name string) bool {
	st := s.Stats()
	for _, r := range st.Replicas {
		if r.Name == name {
			return !r.Stale && r.HintRecords == 0 && r.Applied >= st.LastAcked
		}
	}
	return false
}

var quiet = slog.New(slog.DiscardHandler)
