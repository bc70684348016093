package reprocess

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"pgregory.net/rapid"

	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/tsstore/memstore"
)

// TestSwitchableRouting checks, for random cells, version ranges, filters
// and queries, that a Switchable answers as one store holding the live
// cells outside the version's range (or not selected by its filter) and
// the version's cells inside it: every cell from exactly one side.
func TestSwitchableRouting(t *testing.T) {
	ctx := context.Background()
	const w = 60_000
	rapid.Check(t, func(t *rapid.T) {
		genCells := func(label string) []tsstore.Cell {
			n := rapid.IntRange(0, 60).Draw(t, label+"n")
			cs := make([]tsstore.Cell, 0, n)
			seen := map[tsstore.CellID]bool{}
			for i := 0; i < n; i++ {
				c := tsstore.Cell{
					Metric: "m",
					Labels: tsstore.Labels{{Name: "merchant", Value: fmt.Sprintf("m%d", rapid.IntRange(0, 3).Draw(t, label+"merchant"))}},
					Start:  int64(rapid.IntRange(0, 40).Draw(t, label+"cell")) * w,
					Seq:    uint32(rapid.IntRange(0, 2).Draw(t, label+"seq")),
					Agg:    tsstore.AggOf(float64(rapid.IntRange(-50, 50).Draw(t, label+"v"))),
				}
				if !seen[c.ID()] {
					seen[c.ID()] = true
					cs = append(cs, c)
				}
			}
			return cs
		}
		liveCells, verCells := genCells("live"), genCells("ver")
		from := int64(rapid.IntRange(0, 30).Draw(t, "from")) * w
		cutover := from + int64(rapid.IntRange(1, 15).Draw(t, "len"))*w
		var filter []tsstore.Matcher
		if rapid.Bool().Draw(t, "filtered") {
			m, _ := tsstore.NewMatcher(tsstore.MatchRegexp, "merchant", "m[01]")
			filter = []tsstore.Matcher{m}
		}
		live, ver, want := memstore.New(nil), memstore.New(nil), memstore.New(nil)
		inVersion := func(c tsstore.Cell) bool {
			return c.Start >= from && c.Start < cutover && tsstore.MatchLabels(filter, c.Labels)
		}
		var wantCells []tsstore.Cell
		for _, c := range liveCells {
			if !inVersion(c) {
				wantCells = append(wantCells, c)
			}
		}
		var vc []tsstore.Cell
		for _, c := range verCells {
			// A version holds only cells of its range and filter.
			if inVersion(c) {
				vc = append(vc, c)
				wantCells = append(wantCells, c)
			}
		}
		for _, x := range []struct {
			s  *memstore.Store
			cs []tsstore.Cell
		}{{live, liveCells}, {ver, vc}, {want, wantCells}} {
			if err := x.s.Write(ctx, x.cs); err != nil {
				t.Fatal(err)
			}
		}
		s := &Switchable{live: live, open: map[string]tsstore.Store{}}
		s.cur.Store(&route{id: "v", store: ver, from: from, cutover: cutover, filter: filter})

		q := tsstore.Query{
			Metric: "m",
			From:   int64(rapid.IntRange(0, 45*w).Draw(t, "qfrom")),
			Step:   time.Duration(rapid.IntRange(1, 9).Draw(t, "step")) * time.Minute,
		}
		q.To = q.From + int64(rapid.IntRange(1, 45*w).Draw(t, "qlen"))
		switch rapid.IntRange(0, 2).Draw(t, "group") {
		case 1:
			q.GroupBy = []string{}
		case 2:
			q.GroupBy = []string{"merchant"}
		}
		wr, err := want.Query(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		gr, err := s.Query(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(wr, gr, cmpopts.EquateEmpty()); d != "" {
			t.Fatalf("query %+v over version [%d, %d) filter %v: (-want +got)\n%s", q, from, cutover, filter, d)
		}
		sel := q.Selector()
		wc, err := want.Cells(ctx, sel)
		if err != nil {
			t.Fatal(err)
		}
		gc, err := s.Cells(ctx, sel)
		if err != nil {
			t.Fatal(err)
		}
		byID := func(a, b tsstore.Cell) int {
			ai, bi := a.ID(), b.ID()
			if ai.Series != bi.Series {
				if ai.Series < bi.Series {
					return -1
				}
				return 1
			}
			if ai.Start != bi.Start {
				return int(ai.Start - bi.Start)
			}
			return int(ai.Seq) - int(bi.Seq)
		}
		slices.SortFunc(wc, byID)
		slices.SortFunc(gc, byID)
		if d := cmp.Diff(wc, gc, cmpopts.EquateEmpty()); d != "" {
			t.Fatalf("cells %+v: (-want +got)\n%s", sel, d)
		}
	})
}
