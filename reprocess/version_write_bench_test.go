package reprocess_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"

	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/tsstore/promtsdb"
)

// storeBenchCells are 1 million cells of 60000 series over 150 minutes,
// sorted by start: what a job writes into a version.
func storeBenchCells() []tsstore.Cell {
	var ls []tsstore.Labels
	for m := 0; m < 1000; m++ {
		for p := 0; p < 20; p++ {
			l, _ := tsstore.NewLabels("merchant", fmt.Sprintf("m%04d", m), "page", fmt.Sprintf("/page/%d", p), "country", "fr")
			ls = append(ls, l)
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	type k struct {
		s     int
		m     int
		start int64
	}
	seen := map[k]bool{}
	var cs []tsstore.Cell
	for len(cs) < 1_000_000 {
		kk := k{r.IntN(len(ls)), r.IntN(3), benchBase + int64(r.IntN(150))*60000}
		if seen[kk] {
			continue
		}
		seen[kk] = true
		cs = append(cs, tsstore.Cell{Metric: []string{"views", "orders", "revenue"}[kk.m], Labels: ls[kk.s], Start: kk.start, Agg: tsstore.AggOf(float64(r.IntN(1000)))})
	}
	slices.SortFunc(cs, func(a, b tsstore.Cell) int { return int(a.Start - b.Start) })
	return cs
}

// BenchmarkVersionWrite is the evaluation behind writing versions through
// promtsdb.Store: it loads the same time-ordered cells through the Store
// (head, WAL, conflict checks) and through tsdb.BlockWriter (a head
// without WAL, then one block cut by Flush, the way promtool backfills),
// mapping cells to the same four series, and reports cells/s of each, the
// block writer's including its Flush. Use -benchtime 1x.
func BenchmarkVersionWrite(b *testing.B) {
	cs := storeBenchCells()
	ctx := context.Background()
	b.Run("promtsdb", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			st, _ := promtsdb.Open(b.TempDir(), nil)
			t0 := time.Now()
			for j := 0; j < len(cs); j += 10000 {
				if err := st.Write(ctx, cs[j:min(j+10000, len(cs))]); err != nil {
					b.Fatal(err)
				}
			}
			w := time.Since(t0)
			st.Close()
			b.Logf("write %v, with close %v", w, time.Since(t0))
		}
		b.ReportMetric(float64(len(cs)*b.N)/b.Elapsed().Seconds(), "cells/s")
		b.ReportMetric(0, "ns/op")
	})
	b.Run("blockwriter", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			dir := b.TempDir()
			t0 := time.Now()
			bw, err := tsdb.NewBlockWriter(slog.New(slog.NewTextHandler(io.Discard, nil)), dir, 2*3600*1000)
			if err != nil {
				b.Fatal(err)
			}
			refs := map[string]*[4]storage.SeriesRef{}
			lsets := map[string]*[4]labels.Labels{}
			for j := 0; j < len(cs); j += 10000 {
				app := bw.AppenderV2(ctx)
				for _, c := range cs[j:min(j+10000, len(cs))] {
					key := tsstore.SeriesKey(c.Metric, c.Labels)
					r := refs[key]
					if r == nil {
						r = &[4]storage.SeriesRef{}
						refs[key] = r
						l := &[4]labels.Labels{}
						for k, suf := range []string{":count", ":sum", ":min", ":max"} {
							bl := labels.NewScratchBuilder(len(c.Labels) + 1)
							bl.Add("__name__", c.Metric+suf)
							for _, x := range c.Labels {
								bl.Add(x.Name, x.Value)
							}
							bl.Sort()
							l[k] = bl.Labels()
						}
						lsets[key] = l
					}
					l := lsets[key]
					vals := [4]float64{float64(c.Count), c.Sum, c.Min, c.Max}
					for k := range vals {
						ref, err := app.Append(r[k], l[k], 0, c.Start, vals[k], nil, nil, storage.AppendV2Options{})
						if err != nil {
							b.Fatal(err)
						}
						r[k] = ref
					}
				}
				if err := app.Commit(); err != nil {
					b.Fatal(err)
				}
			}
			w := time.Since(t0)
			if _, err := bw.Flush(ctx); err != nil {
				b.Fatal(err)
			}
			bw.Close()
			b.Logf("append %v, with flush %v", w, time.Since(t0))
		}
		b.ReportMetric(float64(len(cs)*b.N)/b.Elapsed().Seconds(), "cells/s")
		b.ReportMetric(0, "ns/op")
	})
}
