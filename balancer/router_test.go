package balancer_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hourglass-io/hourglass/balancer"
	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/tsstore/memstore"
)

// faultyStore wraps a Store and fails its reads with a set error.
type faultyStore struct {
	tsstore.Store
	mu    sync.Mutex // guards err and reads
	err   error
	reads int
}

func (f *faultyStore) setErr(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.err = err
}

func (f *faultyStore) fault() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads++
	return f.err
}

func (f *faultyStore) Query(ctx context.Context, q tsstore.Query) (*tsstore.Result, error) {
	if err := f.fault(); err != nil {
		return nil, err
	}
	return f.Store.Query(ctx, q)
}

func (f *faultyStore) Cells(ctx context.Context, sel tsstore.Selector) ([]tsstore.Cell, error) {
	if err := f.fault(); err != nil {
		return nil, err
	}
	return f.Store.Cells(ctx, sel)
}

func testCells() []tsstore.Cell {
	var cells []tsstore.Cell
	for m := range 3 {
		for i := range 10 {
			v := float64(i + m)
			cells = append(cells, tsstore.Cell{
				Metric: "orders",
				Labels: tsstore.Labels{{Name: "merchant", Value: fmt.Sprint("m", m)}},
				Start:  int64(i) * 60_000, Agg: tsstore.Agg{Count: 1, Sum: v, Min: v, Max: v},
			})
		}
	}
	return cells
}

// replicas returns a balancer over n memstore replicas holding the same
// cells, each behind a faultyStore, and the oracle.
func replicas(t *testing.T, p balancer.Policy, n int, opts *balancer.Options[tsstore.Store]) (*balancer.Balancer[tsstore.Store], []*faultyStore, *memstore.Store) {
	t.Helper()
	if opts == nil {
		opts = &balancer.Options[tsstore.Store]{}
	}
	opts.Seed = 7
	b := balancer.New(p, opts)
	t.Cleanup(func() { b.Close() })
	oracle := memstore.New(nil)
	if err := oracle.Write(context.Background(), testCells()); err != nil {
		t.Fatal(err)
	}
	var fs []*faultyStore
	for i := range n {
		s := memstore.New(nil)
		if err := s.Write(context.Background(), testCells()); err != nil {
			t.Fatal(err)
		}
		f := &faultyStore{Store: s}
		fs = append(fs, f)
		if err := b.Add(balancer.Backend[tsstore.Store]{ID: fmt.Sprint("r", i), Value: f}); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for _, f := range fs {
			f.Close()
		}
		oracle.Close()
	})
	return b, fs, oracle
}

var testQuery = tsstore.Query{Metric: "orders", From: 0, To: 600_000, Step: 5 * time.Minute, GroupBy: []string{}}

func TestStoreRouterRetriesOnUnavailable(t *testing.T) {
	ctx := context.Background()
	b, fs, oracle := replicas(t, balancer.RoundRobin(), 3, &balancer.Options[tsstore.Store]{ConsecutiveFailures: 3, MaxEjectionPercent: 50})
	r := balancer.NewStoreRouter(b, nil)
	want, _ := oracle.Query(ctx, testQuery)
	fs[0].setErr(tsstore.Errorf(tsstore.ErrUnavailable, "replica r0 down"))
	for range 50 {
		got, err := r.Query(ctx, testQuery)
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(want, got); d != "" {
			t.Fatalf("query through the router differs from the oracle (-want +got):\n%s", d)
		}
	}
	sel := testQuery.Selector()
	cells, err := r.Cells(ctx, sel)
	if err != nil || len(cells) != 30 {
		t.Fatalf("cells: %d, %v", len(cells), err)
	}
	// r0 failed 3 times in a row and is ejected: it no longer gets reads.
	s := status2(b, "r0")
	if !s.Ejected || s.Failures != 3 {
		t.Fatalf("r0 after failing: %+v", s)
	}
	before := fs[0].reads
	for range 20 {
		if _, err := r.Query(ctx, testQuery); err != nil {
			t.Fatal(err)
		}
	}
	if fs[0].reads != before {
		t.Errorf("ejected replica still read %d times", fs[0].reads-before)
	}
}

func status2(b *balancer.Balancer[tsstore.Store], id string) balancer.Status {
	for _, s := range b.Status() {
		if s.ID == id {
			return s
		}
	}
	return balancer.Status{}
}

func TestStoreRouterAllFail(t *testing.T) {
	ctx := context.Background()
	b, fs, _ := replicas(t, balancer.LeastConnections(), 3, &balancer.Options[tsstore.Store]{ConsecutiveFailures: -1})
	for i, f := range fs {
		f.setErr(tsstore.Errorf(tsstore.ErrUnavailable, "replica %d down", i))
	}
	r := balancer.NewStoreRouter(b, &balancer.RouterOptions{Attempts: 2})
	_, err := r.Query(ctx, testQuery)
	if !errors.Is(err, tsstore.ErrUnavailable) || !strings.Contains(err.Error(), "failed on 2 replicas") {
		t.Fatalf("query with every replica down: %v", err)
	}
	reads := 0
	for _, f := range fs {
		reads += f.reads
	}
	if reads != 2 {
		t.Errorf("%d replicas read, want Attempts = 2", reads)
	}
	// With more attempts than replicas, the error says none was left.
	r3 := balancer.NewStoreRouter(b, &balancer.RouterOptions{Attempts: 5})
	if _, err := r3.Cells(ctx, testQuery.Selector()); !errors.Is(err, tsstore.ErrUnavailable) || !strings.Contains(err.Error(), "eligible") {
		t.Fatalf("cells with every replica down: %v", err)
	}
}

func TestStoreRouterDoesNotRetryInvalid(t *testing.T) {
	ctx := context.Background()
	b, fs, _ := replicas(t, balancer.ConsistentHash(nil), 2, nil)
	r := balancer.NewStoreRouter(b, nil)
	bad := testQuery
	bad.Step = 7 * time.Second // not a multiple of the cell width
	_, err := r.Query(ctx, bad)
	if !errors.Is(err, tsstore.ErrInvalid) {
		t.Fatalf("invalid query: %v", err)
	}
	if n := fs[0].reads + fs[1].reads; n != 1 {
		t.Errorf("invalid query tried on %d replicas, want 1", n)
	}
	for _, s := range b.Status() {
		if s.Failures != 0 || s.InFlight != 0 {
			t.Errorf("invalid query counted against %s: %+v", s.ID, s)
		}
	}
}

func TestStoreRouterEligible(t *testing.T) {
	ctx := context.Background()
	b, fs, _ := replicas(t, balancer.PeakEWMA(nil), 3, nil)
	r := balancer.NewStoreRouter(b, &balancer.RouterOptions{
		Eligible: func(id string, _ tsstore.Store) bool { return id != "r1" }, // r1 lags behind
	})
	for range 30 {
		if _, err := r.Query(ctx, testQuery); err != nil {
			t.Fatal(err)
		}
	}
	if fs[1].reads != 0 || fs[0].reads == 0 || fs[2].reads == 0 {
		t.Errorf("reads per replica: %d %d %d; want none on r1", fs[0].reads, fs[1].reads, fs[2].reads)
	}
}
