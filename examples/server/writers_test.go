package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hourglass-io/hourglass/internal/servertest"
	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/tsstore/influx"
)

// TestManyWritersOneStore is issue 17's end-to-end proof, on real
// processes: two servers over one real InfluxDB with one shared tokens
// file, the same merchants written through both within the same minutes,
// flushes on both, a SIGKILL and restart of one in between. Afterwards the
// store holds exactly the sum of what was acknowledged, neither server
// reports a flush error, nothing is quarantined. It starts with the
// issue's reproduction: 10 EUR through A, 7 EUR through B, both flushed:
// 17 in the store. Once with localcache, once with rediscache (each server
// its own prefix in one Redis).
func TestManyWritersOneStore(t *testing.T) {
	url := servertest.InfluxURL(t)
	for _, cache := range []string{"local", "redis"} {
		t.Run(cache, func(t *testing.T) {
			tag := randomTag()
			db := "hgtest_writers_" + tag
			shared := t.TempDir()
			args := func(name string) []string {
				a := []string{"-store", "influx", "-influx-url", url, "-influx-db", db, "-influx-write-api", "v1",
					"-tokens", filepath.Join(shared, "tokens.json"), "-archive-dirs", "none"}
				if cache == "redis" {
					a = append(a, "-cache", "redis", "-redis-addr", servertest.Redis(t), "-redis-prefix", "hgtest-writers-"+tag+"-"+name)
				}
				return a
			}
			dirs := map[string]string{"A": t.TempDir(), "B": t.TempDir()}
			start := func(name string) *serverProc { return startServer(t, dirs[name], args(name)...) }
			srv := map[string]*serverProc{"A": start("A")}
			srv["B"] = start("B")
			admin := adminToken(t, shared)
			writers := map[string]string{}
			for name, p := range srv {
				writers[name] = bannerWriter(t, p)
			}
			if writers["A"] == "" || writers["A"] == writers["B"] {
				t.Fatalf("writer ids in the banners: %v; want two different ones", writers)
			}

			acked := map[string]float64{}
			order := func(name, merchant string, amount float64) {
				t.Helper()
				p := srv[name]
				tok := p.merchantToken(admin, merchant)
				p.mustDo(http.StatusOK, "POST", "/v1/events", tok, "application/json", fmt.Sprintf(`[{"type":"order","amount":%g,"currency":"EUR"}]`, amount))
				acked[merchant] += amount
			}
			flush := func(name string) {
				t.Helper()
				var r flushResponse
				if err := json.Unmarshal([]byte(srv[name].mustDo(http.StatusOK, "POST", "/v1/admin/flush", admin, "", "")), &r); err != nil {
					t.Fatal(err)
				}
				if r.Writer != writers[name] || r.Quarantined != 0 {
					t.Errorf("flush of %s: writer %q, %d quarantined; want %q and none", name, r.Writer, r.Quarantined, writers[name])
				}
			}

			// The reproduction.
			order("A", "demo", 10)
			order("B", "demo", 7)
			flush("A")
			flush("B")
			if got := influxRevenue(t, url, db); got["demo"] != 17 {
				t.Fatalf("revenue of demo in the store after both flushed: %v, want 17", got["demo"])
			}
			for name, p := range srv {
				if got := p.query(p.merchantToken(admin, "demo"), "revenue", "from=now-1h&step=1h", "currency"); !equalFigures(got, map[string]float64{"EUR": 17}) {
					t.Errorf("revenue of demo read through %s: %v, want EUR 17", name, got)
				}
			}

			// Rounds over shared merchants, with flushes on both and a
			// SIGKILL of A holding unflushed writes.
			merchants := []string{"demo", "shop1", "shop2"}
			for round := range 6 {
				for i, m := range merchants {
					order("A", m, float64(round*10+i+1))
					order("B", m, float64(round*100+i+1)/4)
				}
				switch round {
				case 1, 4:
					flush("A")
				case 2:
					flush("B")
				case 3:
					if err := srv["A"].cmd.Process.Kill(); err != nil {
						t.Fatal(err)
					}
					_ = srv["A"].cmd.Wait()
					srv["A"] = start("A")
					if w := bannerWriter(t, srv["A"]); w != writers["A"] {
						t.Errorf("writer id of A after a restart: %q, want %q", w, writers["A"])
					}
				}
			}
			flush("A")
			flush("B")
			for name, p := range srv {
				var q quarantineResponse
				if err := json.Unmarshal([]byte(p.mustDo(http.StatusOK, "GET", "/v1/admin/quarantine", admin, "", "")), &q); err != nil {
					t.Fatal(err)
				}
				if q.Count != 0 || q.Writer != writers[name] {
					t.Errorf("quarantine of %s: %+v; want writer %q and nothing", name, q, writers[name])
				}
				m := p.mustDo(http.StatusOK, "GET", "/metrics", "", "", "")
				for _, want := range []string{"hourglass_writeback_flush_errors_total 0", "hourglass_writeback_quarantined_cells_total 0", "hourglass_writeback_quarantined_cells 0"} {
					if !strings.Contains(m, "\n"+want+"\n") {
						t.Errorf("/metrics of %s lacks %q:\n%s", name, want, grepLines(m, "hourglass_writeback_"))
					}
				}
			}
			for _, p := range srv {
				p.stop()
			}
			got := influxRevenue(t, url, db)
			for _, m := range merchants {
				if math.Abs(got[m]-acked[m]) > 1e-9 {
					t.Errorf("revenue of %s in the store: %v, want the acknowledged %v", m, got[m], acked[m])
				}
			}
		})
	}
}

// randomTag returns 8 random hex digits, for names of databases and
// prefixes that no other test run uses.
func randomTag() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// bannerWriter returns the writer id the server's banner prints.
func bannerWriter(t *testing.T, p *serverProc) string {
	t.Helper()
	for _, l := range p.lines {
		if w, ok := strings.CutPrefix(strings.TrimSpace(l), "writer id: "); ok {
			w, _, _ = strings.Cut(w, " ")
			return w
		}
	}
	t.Fatalf("no writer id in the banner:\n%s", strings.Join(p.lines, "\n"))
	return ""
}

// influxRevenue reads the revenue per merchant of the last two hours from
// InfluxDB directly.
func influxRevenue(t *testing.T, url, db string) map[string]float64 {
	t.Helper()
	st, err := influx.Open(url, &influx.Options{Database: db})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Now()
	res, err := st.Query(context.Background(), tsstore.Query{
		Metric: "revenue", GroupBy: []string{"merchant"}, Step: time.Hour,
		From: tsstore.CellStart(tsstore.Millis(now.Add(-2*time.Hour)), time.Hour),
		To:   tsstore.CellStart(tsstore.Millis(now), time.Hour) + time.Hour.Milliseconds(),
	})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, s := range res.Series {
		for _, b := range s.Buckets {
			out[s.Labels.Get("merchant")] += b.Sum
		}
	}
	return out
}

// TestQuarantineEndpoints makes the real InfluxDB refuse one cell for good
// (a cell with the server's identity and another aggregate is there
// already): the flush still lands every other cell and quarantines that
// one, which GET /v1/admin/quarantine lists (also after a SIGKILL and
// restart) and /metrics counts; once the cause is removed, POST
// /v1/admin/quarantine/resubmit lands it.
func TestQuarantineEndpoints(t *testing.T) {
	url := servertest.InfluxURL(t)
	db := "hgtest_quarantine_" + randomTag()
	dir := t.TempDir()
	args := []string{"-store", "influx", "-influx-url", url, "-influx-db", db, "-influx-write-api", "v1", "-archive-dirs", "none"}
	p := startServer(t, dir, args...)
	admin := adminToken(t, dir)
	writer := bannerWriter(t, p)
	minute := tsstore.CellStart(tsstore.Millis(time.Now()), time.Minute)
	st, err := influx.Open(url, &influx.Options{Database: db, WriteAPI: influx.WriteV1})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	// The cell the first flush (generation 1: Seq 1) will make for "bad",
	// with another aggregate.
	squatter := tsstore.Cell{Metric: "revenue", Labels: tsstore.Labels{{Name: "currency", Value: "EUR"}, {Name: "merchant", Value: "bad"}},
		Start: minute, Writer: writer, Seq: 1, Agg: tsstore.Agg{Count: 1, Sum: 99, Min: 99, Max: 99}}
	if err := st.Write(context.Background(), []tsstore.Cell{squatter}); err != nil {
		t.Fatal(err)
	}
	for m, amount := range map[string]float64{"bad": 5, "good": 3} {
		p.mustDo(http.StatusOK, "POST", "/v1/events", p.merchantToken(admin, m), "application/json", fmt.Sprintf(`[{"type":"order","amount":%g,"currency":"EUR","time":%d}]`, amount, minute))
	}
	var fr flushResponse
	if err := json.Unmarshal([]byte(p.mustDo(http.StatusOK, "POST", "/v1/admin/flush", admin, "", "")), &fr); err != nil {
		t.Fatal(err)
	}
	if fr.Quarantined != 1 || len(fr.Committed) != 1 {
		t.Fatalf("flush: %+v; want the generation committed with 1 cell quarantined", fr)
	}
	quarantine := func(p *serverProc) quarantineResponse {
		t.Helper()
		var q quarantineResponse
		if err := json.Unmarshal([]byte(p.mustDo(http.StatusOK, "GET", "/v1/admin/quarantine", admin, "", "")), &q); err != nil {
			t.Fatal(err)
		}
		return q
	}
	q := quarantine(p)
	if q.Count != 1 || q.Writer != writer || len(q.Cells) != 1 {
		t.Fatalf("quarantine: %+v; want the one refused cell", q)
	}
	if c := q.Cells[0]; c.Metric != "revenue" || c.Labels["merchant"] != "bad" || c.Writer != writer || c.Seq != 1 || c.Sum != 5 || !strings.Contains(c.Reason, "conflict") || c.Start.UnixMilli() != minute {
		t.Errorf("quarantined cell: %+v", c)
	}
	if m := p.mustDo(http.StatusOK, "GET", "/metrics", "", "", ""); !strings.Contains(m, "\nhourglass_writeback_quarantined_cells_total 1\n") || !strings.Contains(m, "\nhourglass_writeback_quarantined_cells 1\n") {
		t.Errorf("/metrics does not count the quarantined cell:\n%s", grepLines(m, "quarantined"))
	}
	if got := influxRevenue(t, url, db); got["good"] != 3 {
		t.Errorf("revenue of good in the store: %v, want 3 (a refused cell must not hold back the others)", got["good"])
	}
	if !strings.Contains(p.stderr.String(), "quarantined") {
		t.Errorf("no log line for the quarantined cell:\n%s", p.stderr.String())
	}

	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = p.cmd.Wait()
	p = startServer(t, dir, args...)
	if q := quarantine(p); q.Count != 1 {
		t.Fatalf("quarantine after a SIGKILL and restart: %+v", q)
	}
	var rr resubmitResponse
	if err := json.Unmarshal([]byte(p.mustDo(http.StatusOK, "POST", "/v1/admin/quarantine/resubmit", admin, "", "")), &rr); err != nil {
		t.Fatal(err)
	}
	if len(rr.Landed) != 0 || len(rr.Refused) != 1 {
		t.Errorf("resubmit while the squatter is there: %+v; want it refused again", rr)
	}
	// The operator removes the cause.
	resp, err := http.PostForm(url+"/query", map[string][]string{"db": {db}, "q": {`DROP SERIES FROM "revenue" WHERE "merchant" = 'bad'`}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if err := json.Unmarshal([]byte(p.mustDo(http.StatusOK, "POST", "/v1/admin/quarantine/resubmit", admin, "", "")), &rr); err != nil {
		t.Fatal(err)
	}
	if len(rr.Landed) != 1 || len(rr.Refused) != 0 {
		t.Errorf("resubmit once the cause is gone: %+v; want it landed", rr)
	}
	if q := quarantine(p); q.Count != 0 {
		t.Errorf("quarantine after the resubmit: %+v", q)
	}
	p.stop()
	if got := influxRevenue(t, url, db); got["bad"] != 5 || got["good"] != 3 {
		t.Errorf("revenue in the store: %v, want bad 5 and good 3", got)
	}
}
