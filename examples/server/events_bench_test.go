package main

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/hourglass-io/hourglass/httpapi"
	"github.com/hourglass-io/hourglass/tsstore"
)

// benchEvents is a realistic request of n events of one merchant: page
// views of 200 pages (70%), orders and refunds, each with its time in the
// last 30 minutes; one point per event.
func benchEvents(n int, now time.Time) []map[string]any {
	r := rand.New(rand.NewPCG(19, 4))
	currencies, statuses := []string{"EUR", "USD", "GBP"}, []string{"paid", "paid", "pending", "failed"}
	evs := make([]map[string]any, n)
	for i := range evs {
		ts := now.Add(-time.Duration(r.Int64N(int64(30 * time.Minute)))).UnixMilli()
		switch x := r.Float64(); {
		case x < 0.7:
			evs[i] = map[string]any{"type": "page_view", "path": fmt.Sprintf("/p/%03d", r.IntN(200)), "time": ts}
		case x < 0.95:
			evs[i] = map[string]any{"type": "order", "amount": float64(r.IntN(20000)) / 100, "currency": currencies[r.IntN(3)], "status": statuses[r.IntN(4)], "time": ts}
		default:
			evs[i] = map[string]any{"type": "refund", "amount": float64(r.IntN(5000)) / 100, "currency": currencies[r.IntN(3)], "time": ts}
		}
	}
	return evs
}

// benchBody is evs as a JSON array, or NDJSON.
func benchBody(evs []map[string]any, ndjson bool) []byte {
	if !ndjson {
		b, _ := json.Marshal(evs)
		return b
	}
	var b []byte
	for _, e := range evs {
		l, _ := json.Marshal(e)
		b = append(append(b, l...), '\n')
	}
	return b
}

// BenchmarkDecodeEvents decodes a request of 5,000 events of one merchant
// (~210 series) as POST /v1/events does, through httpapi's framing, with
// the decoder before the fast one ("reflect": each event unmarshalled into a
// struct, matched with regular expressions and given labels of its own) and
// with the interning decoder ("fast"). httpapi's BenchmarkEventFraming
// measures the framing before and after.
//
//	go test ./examples/server -run '^$' -bench DecodeEvents -benchtime 50x
func BenchmarkDecodeEvents(b *testing.B) {
	const n = 5000
	now := time.Now()
	evs := benchEvents(n, now)
	for _, framing := range []string{"array", "ndjson"} {
		body := benchBody(evs, framing == "ndjson")
		for _, path := range []string{"reflect", "fast"} {
			decode := func() ([]tsstore.Point, error) {
				decode := decodeEvent
				if path == "reflect" {
					decode = decodeEventReflect
				}
				return httpapi.DecodeEvents(body, framing == "ndjson", decode, "shop-1", now)
			}
			b.Run(framing+"/"+path, func(b *testing.B) {
				ps, err := decode()
				if err != nil || len(ps) != n {
					b.Fatalf("%d points, %v", len(ps), err)
				}
				b.SetBytes(int64(len(body)))
				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				b.ResetTimer()
				for range b.N {
					if _, err := decode(); err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				runtime.ReadMemStats(&after)
				events := float64(b.N) * n
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/events, "ns/event")
				b.ReportMetric(float64(after.Mallocs-before.Mallocs)/events, "allocs/event")
				b.ReportMetric(float64(len(ps))*float64(b.N)/b.Elapsed().Seconds(), "points/s")
			})
		}
	}
}
