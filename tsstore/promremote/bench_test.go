package promremote_test

import (
	"bytes"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"

	"github.com/hourglass-io/hourglass/internal/servertest"
	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/tsstore/promremote"
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
