package influx

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hourglass-io/hourglass/internal/servertest"
	"github.com/hourglass-io/hourglass/tsstore"
)

var benchDB atomic.Int64

// benchDatabase creates a database for a benchmark, dropped at its end.
func benchDatabase(b *testing.B, u string) string {
	db := fmt.Sprintf("hg_bench_%d_%d", time.Now().UnixNano()%1e9, benchDB.Add(1))
	c := &http.Client{Transport: &http.Transport{}}
	run := func(stmt string) {
		resp, err := c.PostForm(u+"/query", url.Values{"q": {stmt}})
		if err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
	}
	run("CREATE DATABASE " + db)
	b.Cleanup(func() {
		run("DROP DATABASE " + db)
		c.CloseIdleConnections()
	})
	return db
}

const benchBase int64 = 1767225600000 // 2026-01-01

// benchBatch returns batch i of a flush-like workload: 100 merchants x 50
// one-minute cells = 5000 new cells.
func benchBatch(i int) []tsstore.Cell {
	cells := make([]tsstore.Cell, 0, 5000)
	for m := 0; m < 100; m++ {
		ls := tsstore.Labels{{Name: "merchant", Value: fmt.Sprintf("m%03d", m)}, {Name: "page", Value: "/cart"}}
		for k := 0; k < 50; k++ {
			c := tsstore.Cell{Metric: "views", Labels: ls, Start: benchBase + int64(i*50+k)*60000}
			c.Add(float64(k))
			c.Add(1)
			cells = append(cells, c)
		}
	}
	return cells
}

// BenchmarkWrite compares points/s written through the Store (v1 write
// path) with POSTing the same line-protocol batches to /write with a bare
// net/http client, on the same server in the same run: every iteration
// sends batch i both ways (to two databases), alternating which goes first
// so that the server's background work (snapshots, compactions) hits both
// alike. One batch is 5000 new points; gzip applies to both.
func BenchmarkWrite(b *testing.B) {
	u := servertest.InfluxURL(b)
	const perBatch = 5000
	for _, gz := range []bool{true, false} {
		for _, skip := range []bool{false, true} {
			b.Run(fmt.Sprintf("gzip=%v/skipcheck=%v", gz, skip), func(b *testing.B) {
				bareDB := benchDatabase(b, u)
				c := &http.Client{Transport: &http.Transport{}}
				defer c.CloseIdleConnections()
				s, err := Open(u, &Options{Database: benchDatabase(b, u), WriteAPI: WriteV1, DisableGzip: !gz, SkipConflictCheck: skip})
				if err != nil {
					b.Fatal(err)
				}
				defer s.Close()
				batches := make([][]tsstore.Cell, b.N)
				bodies := make([][]byte, b.N)
				for i := range batches {
					batches[i] = benchBatch(i)
					for j := range batches[i] {
						bodies[i] = appendLine(bodies[i], &batches[i][j])
					}
				}
				bare := func(i int) {
					var rd io.Reader = bytes.NewReader(bodies[i])
					req, _ := http.NewRequest(http.MethodPost, u+"/write?precision=ms&db="+bareDB, nil)
					if gz {
						var zb bytes.Buffer
						zw := gzip.NewWriter(&zb)
						_, _ = zw.Write(bodies[i])
						_ = zw.Close()
						rd = &zb
						req.Header.Set("Content-Encoding", "gzip")
					}
					req.Body = io.NopCloser(rd)
					resp, err := c.Do(req)
					if err != nil {
						b.Fatal(err)
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusNoContent {
						b.Fatalf("POST /write: %s", resp.Status)
					}
				}
				store := func(i int) {
					if err := s.Write(context.Background(), batches[i]); err != nil {
						b.Fatal(err)
					}
				}
				var tBare, tStore time.Duration
				timed := func(d *time.Duration, f func(int), i int) {
					t0 := time.Now()
					f(i)
					*d += time.Since(t0)
				}
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if i%2 == 0 {
						timed(&tBare, bare, i)
						timed(&tStore, store, i)
					} else {
						timed(&tStore, store, i)
						timed(&tBare, bare, i)
					}
				}
				b.StopTimer()
				bareRate := float64(b.N*perBatch) / tBare.Seconds()
				storeRate := float64(b.N*perBatch) / tStore.Seconds()
				b.ReportMetric(bareRate, "bare-points/s")
				b.ReportMetric(storeRate, "store-points/s")
				b.ReportMetric(storeRate/bareRate, "store/bare")
			})
		}
	}
}

// BenchmarkQuery measures query latency over one day of one-minute cells
// of 100 series: one series at 1-minute buckets, and all 100 grouped by
// merchant at 1-hour buckets, aggregated by InfluxDB (an equality matcher
// or none) or by the store (a regexp matcher forces it).
func BenchmarkQuery(b *testing.B) {
	u := servertest.InfluxURL(b)
	s, err := Open(u, &Options{Database: benchDatabase(b, u), WriteAPI: WriteV1, SkipConflictCheck: true})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	for i := 0; i < 24*60/50+1; i++ {
		if err := s.Write(context.Background(), benchBatch(i)); err != nil {
			b.Fatal(err)
		}
	}
	day := int64(24 * 3600 * 1000)
	mustCompile := func(m tsstore.Matcher) tsstore.Matcher {
		if err := m.Compile(); err != nil {
			b.Fatal(err)
		}
		return m
	}
	for _, tc := range []struct {
		name   string
		q      tsstore.Query
		series int
	}{
		{"one-series/24h/1m", tsstore.Query{Metric: "views", Matchers: []tsstore.Matcher{{Type: tsstore.MatchEqual, Name: "merchant", Value: "m042"}}, From: benchBase, To: benchBase + day, Step: time.Minute}, 1},
		{"group-by-100-series/24h/1h/influx-aggregates", tsstore.Query{Metric: "views", From: benchBase, To: benchBase + day, Step: time.Hour, GroupBy: []string{"merchant"}}, 100},
		{"group-by-100-series/24h/1h/store-aggregates", tsstore.Query{Metric: "views", Matchers: []tsstore.Matcher{mustCompile(tsstore.Matcher{Type: tsstore.MatchRegexp, Name: "merchant", Value: "m.*"})}, From: benchBase, To: benchBase + day, Step: time.Hour, GroupBy: []string{"merchant"}}, 100},
	} {
		b.Run(tc.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				r, err := s.Query(context.Background(), tc.q)
				if err != nil {
					b.Fatal(err)
				}
				if len(r.Series) != tc.series {
					b.Fatalf("%d series, want %d", len(r.Series), tc.series)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/query")
		})
	}
}
