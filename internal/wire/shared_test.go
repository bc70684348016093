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
	r := &Reader{B: buf, Intern: map[string]string{}}
	sets := LabelSets{}
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
	if len(sets) != 2 {
		t.Errorf("%d sets, want 2", len(sets))
	}
	for cut := range len(buf) {
		r := &Reader{B: buf[:cut]}
		for range r.Count() {
			r.SharedPoint(LabelSets{})
		}
		if r.End() == nil {
			t.Fatalf("a cut at %d of %d bytes decoded without error", cut, len(buf))
		}
	}
}
