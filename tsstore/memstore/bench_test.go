package memstore_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/tsstore/memstore"
)

func benchCells(series, perSeries int) []tsstore.Cell {
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	cells := make([]tsstore.Cell, 0, series*perSeries)
	for s := 0; s < series; s++ {
		ls := tsstore.Labels{{Name: "merchant", Value: fmt.Sprintf("m%05d", s)}}
		for i := 0; i < perSeries; i++ {
			cells = append(cells, tsstore.Cell{Metric: "views", Labels: ls, Start: base + int64(i)*60_000, Agg: tsstore.AggOf(float64(i))})
		}
	}
	return cells
}

// BenchmarkWrite measures cells/s written in batches of 10,000 cells.
//
//	go test -run '^$' -bench . ./tsstore/memstore/
func BenchmarkWrite(b *testing.B) {
	cells := benchCells(1000, 100)
	ctx := context.Background()
	b.ResetTimer()
	n := 0
	start := time.Now()
	for i := 0; i < b.N; i++ {
		s := memstore.New(nil)
		for j := 0; j < len(cells); j += 10_000 {
			if err := s.Write(ctx, cells[j:j+10_000]); err != nil {
				b.Fatal(err)
			}
		}
		n += len(cells)
	}
	b.ReportMetric(float64(n)/time.Since(start).Seconds(), "cells/s")
}

// BenchmarkQuery measures one merchant's 100 cells at a 10-minute step,
// among 1,000 merchants.
func BenchmarkQuery(b *testing.B) {
	cells := benchCells(1000, 100)
	ctx := context.Background()
	s := memstore.New(nil)
	if err := s.Write(ctx, cells); err != nil {
		b.Fatal(err)
	}
	m, _ := tsstore.NewMatcher(tsstore.MatchEqual, "merchant", "m00042")
	q := tsstore.Query{Metric: "views", Matchers: []tsstore.Matcher{m}, From: cells[0].Start, To: cells[0].Start + 100*60_000, Step: 10 * time.Minute}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r, err := s.Query(ctx, q)
		if err != nil || len(r.Series) != 1 || len(r.Series[0].Buckets) != 10 {
			b.Fatalf("%+v %v", r, err)
		}
	}
}
