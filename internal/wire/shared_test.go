package wire

import (
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/hourglass-io/hourglass/tsstore"
)

func TestSharedPoints(t *testing.T) {
	a := tsstore.Labels{{Name: "merchant", Value: "m1"}, {Name: "page", Value: "/"}}
	b := tsstore.Labels{{Name: "merchant", Value: "m2"}}
	ps := []tsstore.Point{
		{Metric: "views", Labels: a, Timestamp: 1, Value: 1},
		{Metric: "views", Labels: b, Timestamp: 2, Value: 2},
		{Metric: "orders", Labels: slices.Clone(a), Timestamp: -3, Value: 3},
		{Metric: "views", Timestamp: 4, Value: 4},
	}
	buf := AppendPoints(nil, ps)
	r := &Reader{B: buf}
	sets := NewShared()
	n := r.Count()
	var got []tsstore.Point
	for range n {
		got = append(got, r.SharedPoint(sets))
	}
	if err := r.End(); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(ps, got); d != "" {
		t.Fatalf("(-want +got):\n%s", d)
	}
	if &got[0].Labels[0] != &got[2].Labels[0] {
		t.Error("equal label sets were not shared")
	}
	if len(sets.sets) != 2 {
		t.Errorf("%d sets, want 2", len(sets.sets))
	}
	for cut := range len(buf) {
		r := &Reader{B: buf[:cut]}
		for range r.Count() {
			r.SharedPoint(NewShared())
		}
		if r.End() == nil {
			t.Fatalf("a cut at %d of %d bytes decoded without error", cut, len(buf))
		}
	}
}

// TestSharedInputReused decodes two points from the same memory, one after
// the other, as a log reader reusing its buffer does.
func TestSharedInputReused(t *testing.T) {
	a := tsstore.Point{Metric: "aa", Labels: tsstore.Labels{{Name: "m", Value: "x1"}}, Timestamp: 1, Value: 1}
	b := tsstore.Point{Metric: "bb", Labels: tsstore.Labels{{Name: "m", Value: "x2"}}, Timestamp: 2, Value: 2}
	s := NewShared()
	buf := make([]byte, 0, 64)
	for _, want := range []tsstore.Point{a, b, a, b} {
		buf = AppendPoint(buf[:0], &want)
		r := &Reader{B: buf}
		if got := r.SharedPoint(s); r.End() != nil || !cmp.Equal(got, want) {
			t.Fatalf("got %v (%v), want %v", got, r.Err, want)
		}
	}
}
