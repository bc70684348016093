package promremote_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"

	"github.com/hourglass-io/hourglass/internal/servertest"
	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/tsstore/memstore"
	"github.com/hourglass-io/hourglass/tsstore/promremote"
	"github.com/hourglass-io/hourglass/writeback"
	"github.com/hourglass-io/hourglass/writeback/localcache"
)

// BenchmarkWrite measures cells/s through the Store on VictoriaMetrics
// against a bare remote-write client posting the same samples in requests
// of the same size (no conflict check, no force flush), interleaved in one
// loop so that both see the same load on a shared machine. An iteration
// is one Write of writeback.DefaultFlushChunk (10,000) cells, one per
// series, at a new sample time: a flush's steady state (the first write of
// each series, which reads its bound back, is done before the timer).
//
//	scripts/test.sh -run '^$' -bench BenchmarkWrite -benchtime 50x ./tsstore/promremote/
func BenchmarkWrite(b *testing.B) {
	const series = 10_000
	vm := servertest.VictoriaMetricsURL(b)
	s := openVictoria(b, nil)
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	start := time.Now().Add(-time.Hour).Truncate(time.Minute).UnixMilli()
	run := fmt.Sprint(time.Now().UnixNano())
	cellsAt := func(who string, n int) []tsstore.Cell {
		cells := make([]tsstore.Cell, series)
		for i := range cells {
			cells[i] = tsstore.Cell{
				Metric: "orders",
				Labels: tsstore.Labels{{Name: "merchant", Value: fmt.Sprintf("m%05d", i)}, {Name: "run", Value: run + who}},
				Start:  start + int64(n%50)*60_000, Writer: "bench", Seq: uint32(n / 50),
				Agg: tsstore.Agg{Count: 3, Sum: 12.5, Min: 1, Max: 9.5},
			}
		}
		return cells
	}
	if err := s.Write(ctx, cellsAt("store", 0)); err != nil {
		b.Fatal(err)
	}
	var store, bare time.Duration
	b.ResetTimer()
	for n := 1; n <= b.N; n++ {
		cells := cellsAt("store", n)
		t0 := time.Now()
		if err := s.Write(ctx, cells); err != nil {
			b.Fatal(err)
		}
		store += time.Since(t0)
		cells = cellsAt("bare", n)
		t0 = time.Now()
		for lo := 0; lo < len(cells); lo += promremote.DefaultBatchSize {
			if err := postBare(client, vm+"/api/v1/write", cells[lo:min(lo+promremote.DefaultBatchSize, len(cells))]); err != nil {
				b.Fatal(err)
			}
		}
		bare += time.Since(t0)
	}
	storeRate := float64(b.N*series) / store.Seconds()
	bareRate := float64(b.N*series) / bare.Seconds()
	b.ReportMetric(storeRate, "store-cells/s")
	b.ReportMetric(bareRate, "bare-cells/s")
	b.ReportMetric(storeRate/bareRate, "ratio")
}

// postBare posts the four samples of each cell the way a plain
// remote-write client would.
func postBare(client *http.Client, url string, cells []tsstore.Cell) error {
	var req prompb.WriteRequest
	for _, c := range cells {
		for k, v := range []float64{float64(c.Count), c.Sum, c.Min, c.Max} {
			ls := []prompb.Label{{Name: "__name__", Value: c.Metric + ":" + []string{"count", "sum", "min", "max"}[k]}, {Name: "__writer__", Value: c.Writer}}
			for _, l := range c.Labels {
				ls = append(ls, prompb.Label{Name: l.Name, Value: l.Value})
			}
			slices.SortFunc(ls, func(a, b prompb.Label) int { return strings.Compare(a.Name, b.Name) })
			req.Timeseries = append(req.Timeseries, prompb.TimeSeries{Labels: ls, Samples: []prompb.Sample{{Timestamp: c.Start + int64(c.Seq), Value: v}}})
		}
	}
	raw, err := req.Marshal()
	if err != nil {
		return err
	}
	hr, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(snappy.Encode(nil, raw)))
	if err != nil {
		return err
	}
	hr.Header.Set("Content-Encoding", "snappy")
	hr.Header.Set("Content-Type", "application/x-protobuf")
	hr.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
	resp, err := client.Do(hr)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return nil
}

// BenchmarkEngineFlush measures the write-back engine's flush into a store
// on VictoriaMetrics after a sustained ingest (2,000 merchants, 3 metrics,
// points over the last 20 minutes: 120,000 cells per flush), in cells/s,
// with the same flush into memstore as the baseline of the engine's own
// cost, in one run:
//
//	scripts/test.sh -run '^$' -bench BenchmarkEngineFlush -benchtime 3x ./tsstore/promremote/
func BenchmarkEngineFlush(b *testing.B) {
	const merchants, minutes = 2000, 20
	metrics := []string{"views", "orders", "revenue"}
	for _, tc := range []struct {
		name string
		open func(b *testing.B) tsstore.Store
	}{
		{"promremote", func(b *testing.B) tsstore.Store { return openVictoria(b, nil) }},
		{"memstore", func(*testing.B) tsstore.Store { return memstore.New(nil) }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			store := tc.open(b)
			cache, err := localcache.Open(filepath.Join(b.TempDir(), "cache"), nil)
			if err != nil {
				b.Fatal(err)
			}
			defer cache.Close()
			eng, err := writeback.New(cache, store, &writeback.Options{FlushInterval: -1, MaxLate: time.Hour, Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				b.Fatal(err)
			}
			defer eng.Close()
			var cells int64
			var took time.Duration
			for n := 0; n < b.N; n++ {
				b.StopTimer()
				now := time.Now().UnixMilli()
				batch := make([]tsstore.Point, 0, len(metrics)*minutes)
				for m := 0; m < merchants; m++ {
					ls := tsstore.Labels{{Name: "merchant", Value: fmt.Sprintf("m%05d", m)}}
					batch = batch[:0]
					for _, metric := range metrics {
						for i := int64(0); i < minutes; i++ {
							batch = append(batch, tsstore.Point{Metric: metric, Labels: ls, Timestamp: now - i*60_000, Value: float64(i)})
						}
					}
					if err := eng.Write(ctx, batch); err != nil {
						b.Fatal(err)
					}
				}
				b.StartTimer()
				t0 := time.Now()
				if _, err := eng.Flush(ctx); err != nil {
					b.Fatal(err)
				}
				took += time.Since(t0)
				cells += merchants * int64(len(metrics)) * minutes
			}
			b.ReportMetric(float64(cells)/took.Seconds(), "cells/s")
		})
	}
}
