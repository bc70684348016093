package httpapi

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/hourglass-io/hourglass/tsstore"
)

// BenchmarkEventFraming splits a request of 5,000 events (200 series) into
// events, with a decoder that only appends one fixed point, so that the
// figure is the framing's: "reflect" is encoding/json's Decoder and
// json.RawMessage (the path before the scanner), "scan" the scanner. The
// example server's BenchmarkDecodeEvents measures framing and decoder.
//
//	go test ./httpapi -run '^$' -bench EventFraming -benchtime 50x
func BenchmarkEventFraming(b *testing.B) {
	const n = 5000
	now := time.Now()
	p := tsstore.Point{Metric: "page_view", Labels: tsstore.Labels{{Name: "merchant", Value: "shop-1"}}, Timestamp: now.UnixMilli(), Value: 1}
	fixed := func(dst []tsstore.Point, _ []byte, _ string, _ time.Time) ([]tsstore.Point, error) {
		return append(dst, p), nil
	}
	evs := make([]string, n)
	for i := range evs {
		evs[i] = fmt.Sprintf(`{"type":"page_view","path":"/p/%03d","device":"mobile","time":%d}`, i%200, now.UnixMilli()-int64(i))
	}
	for _, framing := range []string{"array", "ndjson"} {
		body := []byte("[" + strings.Join(evs, ",") + "]")
		if framing == "ndjson" {
			body = []byte(strings.Join(evs, "\n") + "\n")
		}
		for _, path := range []string{"reflect", "scan"} {
			parse := map[string]func([]byte, EventDecoder, string, time.Time) ([]tsstore.Point, error){
				"array/reflect": parseEventsJSONReflect, "ndjson/reflect": parseEventsNDJSONReflect,
				"array/scan": func(body []byte, d EventDecoder, m string, now time.Time) ([]tsstore.Point, error) {
					return parseEventsJSON(nil, body, d, m, now)
				},
				"ndjson/scan": func(body []byte, d EventDecoder, m string, now time.Time) ([]tsstore.Point, error) {
					return parseEventsNDJSON(nil, body, d, m, now)
				},
			}[framing+"/"+path]
			b.Run(framing+"/"+path, func(b *testing.B) {
				b.SetBytes(int64(len(body)))
				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				for b.Loop() {
					if ps, err := parse(body, fixed, "shop-1", now); err != nil || len(ps) != n {
						b.Fatalf("%d points, %v", len(ps), err)
					}
				}
				runtime.ReadMemStats(&after)
				events := float64(b.N) * n
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/events, "ns/event")
				b.ReportMetric(float64(after.Mallocs-before.Mallocs)/events, "allocs/event")
				b.ReportMetric(events/b.Elapsed().Seconds(), "points/s")
			})
		}
	}
}
