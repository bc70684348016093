package httpapi

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/writeback"
)

// reuseBody is a request of n lines (or events) of metric, all of the same
// length for a metric of a given length: line i is of series label=<key>
// value <prefix><i%50>, value 1+i%9, at now minus i seconds; reversed, the
// lines are in the opposite order. It returns the body and the cells it
// makes, by cellKeyOf.
func reuseBody(format, metric, label, prefix string, n int, reversed bool, now time.Time, width time.Duration) ([]byte, map[tsstore.CellID]tsstore.Agg) {
	var b []byte
	if format == "array" {
		b = append(b, '[')
	}
	want := map[tsstore.CellID]tsstore.Agg{}
	for j := range n {
		i := j
		if reversed {
			i = n - 1 - j
		}
		value, ts := float64(1+i%9), now.Add(-time.Duration(i)*time.Second).UnixMilli()
		series := fmt.Sprintf("%s%03d", prefix, i%50)
		switch format {
		case "lines":
			b = fmt.Appendf(b, "%s,%s=%s value=%v %d\n", metric, label, series, value, ts)
		case "array", "ndjson":
			if format == "array" && j > 0 {
				b = append(b, ',')
			}
			b = fmt.Appendf(b, `{"metric":%q,"labels":{%q:%q},"value":%v,"time":%d}`, metric, label, series, value, ts)
			if format == "ndjson" {
				b = append(b, '\n')
			}
		}
		k := cellKeyOf(metric, tsstore.Labels{{Name: "merchant", Value: "shop"}, {Name: label, Value: series}}, tsstore.CellStart(ts, width))
		a := want[k]
		a.Add(value)
		want[k] = a
	}
	if format == "array" {
		b = append(b, ']')
	}
	return b, want
}

// cellKeyOf is the key of a cell here: its series and start (its partials,
// of other writers or Seqs, are one cell).
func cellKeyOf(metric string, ls tsstore.Labels, start int64) tsstore.CellID {
	return tsstore.CellID{Series: tsstore.SeriesKey(metric, ls), Start: start}
}

// cellsOf returns the engine's cells of metric (cached and stored), by
// cellKeyOf, partials merged.
func cellsOf(t *testing.T, eng *writeback.Engine, metric string, now time.Time) map[tsstore.CellID]tsstore.Agg {
	t.Helper()
	cells, _, err := eng.CellsDetailed(context.Background(), tsstore.Selector{Metric: metric, From: now.Add(-time.Hour).UnixMilli(), To: now.Add(time.Hour).UnixMilli()})
	if err != nil {
		t.Fatal(err)
	}
	got := map[tsstore.CellID]tsstore.Agg{}
	for _, c := range cells {
		k := cellKeyOf(c.Metric, c.Labels, c.Start)
		a := got[k]
		a.Merge(c.Agg)
		got[k] = a
	}
	return got
}

// TestReusedBuffersKeepNothing: the handlers reuse a request's body and
// points (and the engine its processed points) for the next requests, so
// nothing kept (the cache's cells, the decoders' interned series and
// metric names) may refer to them. Requests A, B of the same size and
// layout but other metric, label name, label values and values (which
// overwrite a reused buffer byte for byte), and A's lines in reverse order
// (the series interned from A are used again, and the bytes where they
// were hold other series), and the cells read back exactly, from the
// cache and after a flush from the store; with
// the identity processor, with one that passes points through (which the
// engine hands on as they are) and with one that makes copies of them
// (which reach the cache in the engine's reused buffer), for line
// protocol (gzipped too) and events.
func TestReusedBuffersKeepNothing(t *testing.T) {
	copying := tsstore.ProcessorFunc{V: "copy/1", F: func(dst []tsstore.Point, p tsstore.Point) ([]tsstore.Point, error) {
		p.Labels = slices.Clone(p.Labels)
		return append(dst, p), nil
	}}
	for _, proc := range []struct {
		name string
		p    tsstore.Processor
	}{{"identity", nil}, {"passthrough", passThrough}, {"copying", copying}} {
		for _, format := range []string{"lines", "lines+gzip", "array", "ndjson"} {
			t.Run(proc.name+"/"+format, func(t *testing.T) {
				format, gzipped := strings.CutSuffix(format, "+gzip")
				now := time.Now()
				ta := newTestAPIWith(t, &writeback.Options{Processor: proc.p, FlushInterval: -1}, &Options{Rate: -1, Now: func() time.Time { return now }})
				width := ta.eng.CellWidth()
				const n = 2000
				bodyA, wantA := reuseBody(format, "alpha", "page", "/a/", n, false, now, width)
				bodyB, wantB := reuseBody(format, "bravo", "path", "/b/", n, false, now, width)
				bodyA2, _ := reuseBody(format, "alpha", "page", "/a/", n, true, now, width)
				if len(bodyA) != len(bodyB) {
					t.Fatalf("bodies of %d and %d bytes, want the same size", len(bodyA), len(bodyB))
				}
				target, header, ok := "/write?precision=ms", http.Header(nil), http.StatusNoContent
				switch format {
				case "array":
					target, header, ok = "/v1/events", ctype("application/json"), http.StatusOK
				case "ndjson":
					target, header, ok = "/v1/events", ctype("application/x-ndjson"), http.StatusOK
				}
				if gzipped {
					header = http.Header{"Content-Encoding": {"gzip"}}
					for _, body := range []*[]byte{&bodyA, &bodyB, &bodyA2} {
						var z bytes.Buffer
						zw := gzip.NewWriter(&z)
						zw.Write(*body)
						zw.Close()
						*body = z.Bytes()
					}
				}
				post := func(body []byte) {
					t.Helper()
					if w := ta.do("POST", target, ta.token, header, body); w.Code != ok {
						t.Fatalf("POST %s: %d %s", target, w.Code, w.Body)
					}
				}
				// Rounds of A, B and A's lines reversed: the lines of A
				// reversed get the series and metric names the decoders
				// interned from an A, where the body now holds other
				// ones. Several rounds, as the pools drop items at random
				// under the race detector.
				const rounds = 5
				for range rounds {
					post(bodyA)
					post(bodyB)
					post(bodyA2)
				}
				for _, w := range []struct {
					cells map[tsstore.CellID]tsstore.Agg
					times int
				}{{wantA, 2 * rounds}, {wantB, rounds}} {
					for k, a := range w.cells {
						sum := a
						for range w.times - 1 {
							sum.Merge(a)
						}
						w.cells[k] = sum
					}
				}
				check := func(when string) {
					t.Helper()
					for metric, want := range map[string]map[tsstore.CellID]tsstore.Agg{"alpha": wantA, "bravo": wantB} {
						if got := cellsOf(t, ta.eng, metric, now); !maps.Equal(got, want) {
							t.Errorf("%s: %d cells of %s, want %d; first differences:\n%s", when, len(got), metric, len(want), diffCells(got, want))
						}
					}
				}
				check("cached")
				if _, err := ta.eng.Flush(context.Background()); err != nil {
					t.Fatal(err)
				}
				check("flushed")
			})
		}
	}
}

// diffCells names up to five cells that differ between got and want.
func diffCells(got, want map[tsstore.CellID]tsstore.Agg) string {
	var out []string
	for k, w := range want {
		if g, ok := got[k]; !ok || g != w {
			out = append(out, fmt.Sprintf("  %q@%d: got %+v (present %v), want %+v", k.Series, k.Start, g, ok, w))
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			out = append(out, fmt.Sprintf("  %q@%d: got %+v, want none", k.Series, k.Start, g))
		}
	}
	return strings.Join(out[:min(len(out), 5)], "\n")
}
