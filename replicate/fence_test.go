package replicate_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hourglass-io/hourglass/replicate"
	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/tsstore/memstore"
)

// The fence refuses older epochs, keeps its epoch across a reopen, and
// refuses plain (epoch-less) writes once a replicated writer has written.
func TestFenced(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "epoch")
	ms := memstore.New(nil)
	f, err := replicate.NewFenced(ms, path)
	if err != nil {
		t.Fatal(err)
	}
	cells := batch(t, 0, 1, "orders")
	if err := f.Write(ctx, cells); err != nil {
		t.Fatalf("plain write at epoch 0: %v", err)
	}
	if err := f.WriteEpoch(ctx, 2, batch(t, 1, 1, "orders")); err != nil || f.Epoch() != 2 {
		t.Fatalf("write at epoch 2: %v, fence at %d", err, f.Epoch())
	}
	for name, err := range map[string]error{
		"epoch 1": f.WriteEpoch(ctx, 1, batch(t, 2, 1, "orders")),
		"plain":   f.Write(ctx, batch(t, 2, 1, "orders")),
		"fence 1": f.Fence(ctx, 1),
	} {
		if !errors.Is(err, replicate.ErrFenced) || !errors.Is(err, tsstore.ErrConflict) {
			t.Errorf("%s after epoch 2: %v, want ErrConflict wrapping ErrFenced", name, err)
		}
	}
	if ms.Len() != 2 {
		t.Fatalf("store holds %d cells, want the 2 accepted", ms.Len())
	}
	if err := f.Fence(ctx, 5); err != nil {
		t.Fatal(err)
	}
	g, err := replicate.NewFenced(ms, path)
	if err != nil || g.Epoch() != 5 {
		t.Fatalf("reopened fence at %d (%v), want 5", g.Epoch(), err)
	}
}

// The collector exports the hint size and age of a down standby.
func TestCollector(t *testing.T) {
	p, sb := newReplica(t, memBackend, "p"), newReplica(t, memBackend, "s")
	s := openStore(t, p, []tsstore.Store{sb}, testOptions(t, replicate.AckPrimary))
	sb.down.Store(true)
	check(t, s)
	if err := s.Write(context.Background(), batch(t, 0, 3, "orders")); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(s.Collector()); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "replica" && lp.GetValue() == "r1" {
					got[mf.GetName()] = m.GetGauge().GetValue()
				}
			}
		}
	}
	if got["hourglass_replicate_hint_bytes"] <= 0 || got["hourglass_replicate_hint_records"] != 1 ||
		got["hourglass_replicate_hint_oldest_age_seconds"] <= 0 || got["hourglass_replicate_healthy"] != 0 {
		t.Fatalf("metrics of the down standby: %v", got)
	}
}
