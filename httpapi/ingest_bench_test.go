package httpapi

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"math/rand/v2"
	"net/http"
	"runtime"
	"testing"
	"time"

	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/writeback"
)

// lineBatch is a request of examples/loadgen's bench: lines lines of two
// fields over 200 series (page tag values) of merchant, timestamps (ms)
// in the 30 minutes before now, seeded by seed.
func lineBatch(lines int, merchant string, now time.Time, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 4))
	var b []byte
	for range lines {
		page, ms, ts := r.IntN(200), r.IntN(2000), now.UnixMilli()-r.Int64N(30*60_000)
		b = fmt.Appendf(b, "web,merchant=%s,page=/p/%03d views=1i,ms=%di %d\n", merchant, page, ms, ts)
	}
	return b
}

// passThrough is a processor that makes every point into itself, as the
// example server's does for line protocol, but is not tsstore.Identity:
// the engine runs it.
var passThrough = tsstore.ProcessorFunc{V: "pass/1", F: func(dst []tsstore.Point, p tsstore.Point) ([]tsstore.Point, error) {
	return append(dst, p), nil
}}

// BenchmarkWriteLineProtocol serves POST /write?precision=ms requests of
// 5,000 lines × 2 fields (examples/loadgen's batches) through the handler
// into a real engine (localcache over memstore), with the identity
// processor and with one that passes every point through (as the example
// server's does for line protocol), gzipped too. B/point and allocs/point are what the
// garbage collector pays per ingested point.
//
//	go test ./httpapi -run '^$' -bench WriteLineProtocol -benchtime 100x
func BenchmarkWriteLineProtocol(b *testing.B) {
	const lines, points = 5000, 10_000
	for _, c := range []struct {
		name string
		proc tsstore.Processor
		gzip bool
	}{{"identity", nil, false}, {"passthrough", passThrough, false}, {"passthrough/gzip", passThrough, true}} {
		b.Run(c.name, func(b *testing.B) {
			ta := newTestAPIWith(b, &writeback.Options{Processor: c.proc, FlushInterval: -1, MaxCacheBytes: 1 << 40}, &Options{Rate: -1})
			now := time.Now()
			bodies := [][]byte{lineBatch(lines, "shop", now, 1), lineBatch(lines, "shop", now, 2)}
			b.SetBytes(int64(len(bodies[0])))
			var header http.Header
			if c.gzip {
				header = http.Header{"Content-Encoding": {"gzip"}}
				for i, body := range bodies {
					var z bytes.Buffer
					zw := gzip.NewWriter(&z)
					zw.Write(body)
					zw.Close()
					bodies[i] = z.Bytes()
				}
			}
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			i := 0
			for b.Loop() {
				if w := ta.do("POST", "/write?precision=ms", ta.token, header, bodies[i%2]); w.Code != http.StatusNoContent {
					b.Fatalf("%d %s", w.Code, w.Body)
				}
				i++
			}
			runtime.ReadMemStats(&after)
			n := float64(b.N) * points
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/n, "ns/point")
			b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/n, "B/point")
			b.ReportMetric(float64(after.Mallocs-before.Mallocs)/n, "allocs/point")
		})
	}
}
