package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// benchOptions are the flags of "loadgen bench".
type benchOptions struct {
	hourglass, influx, vm   string
	tokens, admin           string
	merchants, series       int
	batches, lines, writers int
	span                    time.Duration
	queries                 int
	sustain, flushInterval  time.Duration
	pid                     int
	influxDB                string
	events                  bool
}

// runBench is "loadgen bench": the same line-protocol batches, made once,
// sent to the example server, InfluxDB and VictoriaMetrics in turn (each
// alone on the machine while it runs), then the same dashboard query to
// each; with -events, the same workload as JSON events to the server's
// /v1/events too, right after its /write. Or, with -sustain, ingest at full
// speed into the server alone while its flushes run, watching its /metrics.
func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var o benchOptions
	fs := flag.NewFlagSet("loadgen bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.hourglass, "hourglass", "", "example server URL (loopback); empty skips it")
	fs.StringVar(&o.influx, "influx", "", "InfluxDB 1.x URL (loopback); empty skips it")
	fs.StringVar(&o.influxDB, "influx-db", "bench", "InfluxDB database, created")
	fs.StringVar(&o.vm, "vm", "", "VictoriaMetrics single-node URL (loopback); empty skips it")
	fs.StringVar(&o.tokens, "tokens", "data/tokens.json", "the server's tokens file, for its admin token")
	fs.StringVar(&o.admin, "admin-token", "", "admin token (instead of -tokens)")
	fs.IntVar(&o.merchants, "merchants", 100, "merchants (one token each on the server)")
	fs.IntVar(&o.series, "series", 200, "series (page tag values) per merchant")
	fs.IntVar(&o.batches, "batches", 400, "batches (requests), each of one merchant")
	fs.IntVar(&o.lines, "lines", 5000, "lines per batch, each of two fields")
	fs.IntVar(&o.writers, "writers", 4, "concurrent writers")
	fs.DurationVar(&o.span, "span", 30*time.Minute, "timestamps lie in the last span")
	fs.IntVar(&o.queries, "queries", 200, "dashboard queries per target (one merchant's views, last hour at 1 minute)")
	fs.DurationVar(&o.sustain, "sustain", 0, "sustained mode: send the batches over and over to -hourglass for this long, then flush")
	fs.DurationVar(&o.flushInterval, "flush-interval", 0, "the server's -flush-interval, for the report (sustained mode)")
	fs.IntVar(&o.pid, "pid", 0, "the server's process id, for its peak RSS (sustained mode)")
	fs.BoolVar(&o.events, "events", false, "burst run: also send the workload to -hourglass as JSON events (POST /v1/events; each line a page_view event)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.merchants < 1 || o.series < 1 || o.batches < 1 || o.lines < 1 || o.writers < 1 || o.span <= 0 {
		return fmt.Errorf("-merchants, -series, -batches, -lines, -writers and -span must be positive")
	}
	if o.events && (o.hourglass == "" || o.sustain > 0) {
		return fmt.Errorf("-events needs -hourglass (only the example server takes events) and is for the burst run, not -sustain")
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: o.writers}, Timeout: opTimeout}
	defer client.CloseIdleConnections()
	var targets []*lineTarget
	if o.hourglass != "" {
		var err error
		if o.admin, err = readAdminToken(o.admin, o.tokens); err != nil {
			return err
		}
		t, err := hourglassTarget(ctx, client, o)
		if err != nil {
			return err
		}
		targets = append(targets, t)
		if o.events {
			targets = append(targets, eventsTarget(t, o))
		}
	}
	if o.sustain > 0 {
		if len(targets) == 0 {
			return fmt.Errorf("-sustain needs -hourglass")
		}
		return sustain(ctx, client, targets[0], o, stdout, stderr)
	}
	if o.influx != "" {
		t, err := influxTarget(ctx, client, o)
		if err != nil {
			return err
		}
		targets = append(targets, t)
	}
	if o.vm != "" {
		if err := checkLoopback(o.vm); err != nil {
			return err
		}
		targets = append(targets, vmTarget(o))
	}
	if len(targets) == 0 {
		return fmt.Errorf("give at least one of -hourglass, -influx, -vm")
	}
	fmt.Fprintf(stderr, "making %d batches of %d lines × 2 fields (%d merchants × %d series, the last %v)\n", o.batches, o.lines, o.merchants, o.series, o.span)
	now := time.Now()
	batches := makeBatches(o, now, false)
	var events []batch
	if o.events {
		fmt.Fprintf(stderr, "making the same batches as JSON events (a page_view per line)\n")
		events = makeBatches(o, now, true)
	}
	var rows []benchRow
	for _, t := range targets {
		fmt.Fprintf(stderr, "%s: writing...\n", t.name)
		b := batches
		if t.events {
			b = events
		}
		row, err := burst(ctx, client, t, b, o)
		if err != nil {
			return fmt.Errorf("%s: %w", t.name, err)
		}
		fmt.Fprintf(stderr, "%s: %.2f M points/s; querying...\n", t.name, row.pointsPerSec/1e6)
		if row.query, err = queries(ctx, client, t, o); err != nil {
			return fmt.Errorf("%s: %w", t.name, err)
		}
		rows = append(rows, row)
	}
	fmt.Fprintf(stdout, "| | ingest, points/s | batch p50 / p99 | dashboard query p50 |\n|---|---|---|---|\n")
	for i, r := range rows {
		ratio := ""
		switch {
		case targets[i].events:
			// One event makes one point where a line makes two: its
			// cost is per event against /write's per line.
			ratio = fmt.Sprintf(" = %.2f M events/s (`/write`: %.2f× the points/s, %.2f× the lines/s)",
				r.pointsPerSec/1e6, rows[0].pointsPerSec/r.pointsPerSec, rows[0].pointsPerSec/2/r.pointsPerSec)
		case i > 0:
			ratio = fmt.Sprintf(" (hourglass %.2f×)", rows[0].pointsPerSec/r.pointsPerSec)
		}
		fmt.Fprintf(stdout, "| %s | %.2f M%s | %s / %s | %s |\n", targets[i].name, r.pointsPerSec/1e6, ratio, ms(r.p50), ms(r.p99), ms(r.query))
	}
	return nil
}

// lineTarget is a database that takes the batches: line protocol, or JSON
// events.
type lineTarget struct {
	name     string
	writeURL string
	// events says that it takes the batches as JSON events (makeBatches
	// with events).
	events bool
	// token returns the Authorization of merchant m's requests ("" for
	// none); query returns the URL of merchant m's dashboard query.
	token func(m int) string
	query func(m int, now time.Time) string
}

func hourglassTarget(ctx context.Context, client *http.Client, o benchOptions) (*lineTarget, error) {
	if err := checkLoopback(o.hourglass); err != nil {
		return nil, err
	}
	toks, err := issueTokens(ctx, client, options{url: o.hourglass, tokens: o.tokens, admin: o.admin, merchants: o.merchants})
	if err != nil {
		return nil, err
	}
	return &lineTarget{
		name:     "hourglass `/write`",
		writeURL: o.hourglass + "/write?precision=ms",
		token:    func(m int) string { return "Bearer " + toks[m] },
		query: func(int, time.Time) string {
			return o.hourglass + "/v1/metrics/web_views?from=now-1h&step=1m"
		},
	}, nil
}

// eventsTarget is the example server's /v1/events, with hg's tokens: its
// dashboard query is hg's on the metric the page_view events make.
func eventsTarget(hg *lineTarget, o benchOptions) *lineTarget {
	return &lineTarget{
		name:     "hourglass `/v1/events`",
		writeURL: o.hourglass + "/v1/events",
		events:   true,
		token:    hg.token,
		query: func(int, time.Time) string {
			return o.hourglass + "/v1/metrics/views?from=now-1h&step=1m"
		},
	}
}

func influxTarget(ctx context.Context, client *http.Client, o benchOptions) (*lineTarget, error) {
	if err := checkLoopback(o.influx); err != nil {
		return nil, err
	}
	var l latencies
	if !do(ctx, client, "POST", o.influx+"/query?q="+url.QueryEscape("CREATE DATABASE "+o.influxDB), "", nil, &l) {
		return nil, fmt.Errorf("InfluxDB: CREATE DATABASE %s failed: %v", o.influxDB, l.errors)
	}
	return &lineTarget{
		name:     "InfluxDB 1.6 `/write`",
		writeURL: o.influx + "/write?precision=ms&db=" + url.QueryEscape(o.influxDB),
		token:    func(int) string { return "" },
		query: func(m int, _ time.Time) string {
			q := fmt.Sprintf(`SELECT sum("views") FROM "web" WHERE "merchant" = '%s' AND time > now() - 1h GROUP BY time(1m)`, merchantID(m))
			return o.influx + "/query?db=" + url.QueryEscape(o.influxDB) + "&q=" + url.QueryEscape(q)
		},
	}, nil
}

func vmTarget(o benchOptions) *lineTarget {
	return &lineTarget{
		name:     "VictoriaMetrics `/write`",
		writeURL: o.vm + "/write?precision=ms",
		token:    func(int) string { return "" },
		query: func(m int, now time.Time) string {
			v := url.Values{
				"query": {fmt.Sprintf(`sum(sum_over_time(web_views{merchant=%q}[1m]))`, merchantID(m))},
				"start": {strconv.FormatInt(now.Add(-time.Hour).Unix(), 10)},
				"end":   {strconv.FormatInt(now.Unix(), 10)},
				"step":  {"60"},
			}
			return o.vm + "/api/v1/query_range?" + v.Encode()
		},
	}
}

// batch is one request: lines (or events) of one merchant.
type batch struct {
	merchant int
	body     []byte
	points   int // the raw points it carries (what the server acknowledges)
}

// makeBatches returns the batches: batch i is merchant i mod merchants's,
// each line one of its series with the fields views and ms, two points:
//
//	web,merchant=load-00007,page=/p/042 views=1i,ms=734i 1767322800000
//
// With events, the same batches (the same draws) as JSON arrays of events,
// each line a page_view event of the same page and time, one point
// (page_view{merchant,path} = 1, which the server's processing turns into
// views = 1 with the same labels; the line's ms field has no counterpart in
// the event format):
//
//	{"type":"page_view","path":"/p/042","time":1767322800000}
func makeBatches(o benchOptions, now time.Time, events bool) []batch {
	r := rand.New(rand.NewPCG(19, 4))
	out := make([]batch, o.batches)
	end := now.UnixMilli()
	for i := range out {
		m := i % o.merchants
		var b bytes.Buffer
		b.Grow(o.lines * 64)
		if events {
			b.WriteByte('[')
		}
		for j := range o.lines {
			page, ms, ts := r.IntN(o.series), r.IntN(2000), end-r.Int64N(o.span.Milliseconds())
			if !events {
				fmt.Fprintf(&b, "web,merchant=%s,page=/p/%03d views=1i,ms=%di %d\n", merchantID(m), page, ms, ts)
				continue
			}
			if j > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"type":"page_view","path":"/p/%03d","time":%d}`, page, ts)
		}
		out[i] = batch{merchant: m, body: b.Bytes(), points: o.lines * 2}
		if events {
			b.WriteString("]\n")
			out[i].body, out[i].points = b.Bytes(), o.lines
		}
	}
	return out
}

// benchRow is one target's line of the table.
type benchRow struct {
	pointsPerSec    float64
	p50, p99, query time.Duration
}

// send posts one batch and returns its latency.
func send(ctx context.Context, client *http.Client, t *lineTarget, b batch) (time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, "POST", t.writeURL, bytes.NewReader(b.body))
	if err != nil {
		return 0, err
	}
	if tok := t.token(b.merchant); tok != "" {
		req.Header.Set("Authorization", tok)
	}
	req.Header.Set("Content-Type", "text/plain; charset=utf-8")
	if t.events {
		req.Header.Set("Content-Type", "application/json")
	}
	t0 := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	resp.Body.Close()
	d := time.Since(t0)
	if resp.StatusCode/100 != 2 {
		return d, fmt.Errorf("write: %s: %s", resp.Status, bytes.TrimSpace(msg))
	}
	return d, nil
}

// burst sends every batch once with o.writers concurrent writers.
func burst(ctx context.Context, client *http.Client, t *lineTarget, batches []batch, o benchOptions) (benchRow, error) {
	next := make(chan batch)
	lat := make([][]time.Duration, o.writers)
	errs := make(chan error, o.writers)
	var wg sync.WaitGroup
	start := time.Now()
	for w := range o.writers {
		wg.Go(func() {
			for b := range next {
				d, err := send(ctx, client, t, b)
				if err != nil {
					errs <- err
					return
				}
				lat[w] = append(lat[w], d)
			}
		})
	}
	var err error
feed:
	for _, b := range batches {
		select {
		case next <- b:
		case err = <-errs:
			break feed
		}
	}
	close(next)
	wg.Wait()
	elapsed := time.Since(start)
	if err == nil {
		select {
		case err = <-errs:
		default:
		}
	}
	if err != nil {
		return benchRow{}, err
	}
	var all latencies
	for _, l := range lat {
		all.ok = append(all.ok, l...)
	}
	s := all.summarize(elapsed)
	points := 0
	for _, b := range batches {
		points += b.points
	}
	return benchRow{pointsPerSec: float64(points) / elapsed.Seconds(), p50: s.p50, p99: s.p99}, nil
}

// queries sends o.queries dashboard queries, one at a time, and returns
// their median latency.
func queries(ctx context.Context, client *http.Client, t *lineTarget, o benchOptions) (time.Duration, error) {
	var l latencies
	for i := range o.queries {
		m := i % o.merchants
		req, err := http.NewRequestWithContext(ctx, "GET", t.query(m, time.Now()), nil)
		if err != nil {
			return 0, err
		}
		if tok := t.token(m); tok != "" {
			req.Header.Set("Authorization", tok)
		}
		t0 := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			return 0, fmt.Errorf("query: %w", err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return 0, fmt.Errorf("query: %s: %.300s", resp.Status, body)
		}
		l.ok = append(l.ok, time.Since(t0))
	}
	return l.summarize(time.Second).p50, nil
}

// sustain sends the batches over and over for o.sustain with o.writers
// writers while the server flushes on its schedule, sampling its /metrics
// and peak RSS every second; then it flushes what is left and reports.
func sustain(ctx context.Context, client *http.Client, t *lineTarget, o benchOptions, stdout, stderr io.Writer) error {
	batches := makeBatches(o, time.Now(), false)
	rctx, cancel := context.WithTimeout(ctx, o.sustain)
	defer cancel()
	var sent, refused atomic.Int64
	var mu sync.Mutex // guards lat
	var lat latencies
	var wg sync.WaitGroup
	start := time.Now()
	for w := range o.writers {
		wg.Go(func() {
			var mine []time.Duration
			for i := w; rctx.Err() == nil; i += o.writers {
				d, err := send(ctx, client, t, batches[i%len(batches)])
				if err != nil {
					// Back-pressure (503) is the sign that the flushes
					// do not keep up: count it and go on.
					refused.Add(1)
					select {
					case <-rctx.Done():
					case <-time.After(100 * time.Millisecond):
					}
					continue
				}
				sent.Add(1)
				mine = append(mine, d)
			}
			mu.Lock()
			lat.ok = append(lat.ok, mine...)
			mu.Unlock()
		})
	}
	var peakCache, peakRSS, maxFlush float64
	// split divides the run's seconds and acknowledged batches by whether
	// flush work ran at the end of each second (the server's
	// hourglass_writeback_flushing), so that the rate with no flush running
	// and the rate while one runs come from the same server in the same run.
	var split [2]struct {
		seconds float64
		batches int64
	}
	last, lastSent := start, int64(0)
	tick := time.NewTicker(time.Second)
	for rctx.Err() == nil {
		select {
		case <-rctx.Done():
		case <-tick.C:
			m, err := scrape(ctx, client, o.hourglass)
			if err != nil {
				fmt.Fprintf(stderr, "\nscraping /metrics: %v\n", err)
				continue
			}
			now, n := time.Now(), sent.Load()
			ph := &split[min(int(m["hourglass_writeback_flushing"]), 1)]
			ph.seconds += now.Sub(last).Seconds()
			ph.batches += n - lastSent
			last, lastSent = now, n
			peakCache = max(peakCache, m["hourglass_writeback_cache_bytes"])
			maxFlush = max(maxFlush, m["hourglass_writeback_last_flush_seconds"])
			peakRSS = max(peakRSS, rss(o.pid))
			fmt.Fprintf(stderr, "\r%5.0fs  %.2f M points/s acknowledged  cache %4.0f MiB  flushes %2.0f (last %.1fs)  refused %d   ",
				time.Since(start).Seconds(), float64(sent.Load())*float64(o.lines*2)/time.Since(start).Seconds()/1e6,
				m["hourglass_writeback_cache_bytes"]/(1<<20), m["hourglass_writeback_flushes_total"], m["hourglass_writeback_last_flush_seconds"], refused.Load())
		}
	}
	tick.Stop()
	wg.Wait()
	elapsed := time.Since(start)
	fmt.Fprintln(stderr)
	// What is left in the cache: flush it now, so that every acknowledged
	// point has been flushed by the end.
	t0 := time.Now()
	if err := flushAll(ctx, o.hourglass, o.admin); err != nil {
		return err
	}
	final := time.Since(t0)
	m, err := scrape(ctx, client, o.hourglass)
	if err != nil {
		return err
	}
	flushTime := m["hourglass_flush_duration_seconds_sum"]
	flushes := m["hourglass_flush_duration_seconds_count"]
	peakRSS = max(peakRSS, rss(o.pid))
	points := float64(sent.Load()) * float64(o.lines*2)
	s := lat.summarize(elapsed)
	rate := func(i int) string {
		if split[i].seconds == 0 {
			return "-"
		}
		return fmt.Sprintf("%.2f M (%.0f s)", float64(split[i].batches)*float64(o.lines*2)/split[i].seconds/1e6, split[i].seconds)
	}
	fmt.Fprintf(stdout, "| sustained, points/s | with no flush running / while flushing | batch p50 / p99 | refused batches | flushes | flush time / run time | flush speed / ingest speed | longest flush / interval | peak cache | peak RSS |\n|---|---|---|---|---|---|---|---|---|---|\n")
	fmt.Fprintf(stdout, "| %.2f M | %s / %s | %s / %s | %d | %.0f (last, after the run: %s) | %.0f s / %.0f s | %.1f× | %.1f s / %v | %.0f MiB | %.0f MiB |\n",
		points/elapsed.Seconds()/1e6, rate(0), rate(1), ms(s.p50), ms(s.p99), refused.Load(), flushes, final.Round(100*time.Millisecond),
		flushTime, elapsed.Seconds()+final.Seconds(), (elapsed.Seconds()+final.Seconds())/max(flushTime, 1e-9),
		max(maxFlush, final.Seconds()), o.flushInterval, peakCache/(1<<20), peakRSS/(1<<20))
	return nil
}

// flushAll asks the server to flush until a flush ends within its budget
// (one that overruns it stops and leaves the rest to the next), at most
// 100 times.
func flushAll(ctx context.Context, base, token string) error {
	// A flush may take up to its budget.
	client := &http.Client{Timeout: time.Hour}
	for range 100 {
		req, err := http.NewRequestWithContext(ctx, "POST", base+"/v1/admin/flush", nil)
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := client.Do(req)
		if err != nil {
			return fmt.Errorf("final flush: %w", err)
		}
		var rep struct {
			Overrun bool `json:"overrun"`
		}
		derr := json.NewDecoder(resp.Body).Decode(&rep)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("final flush: %s", resp.Status)
		}
		if derr != nil {
			return fmt.Errorf("final flush: reading the report: %w", derr)
		}
		if !rep.Overrun {
			return nil
		}
	}
	return errors.New("final flush: still overrunning its budget after 100 flushes")
}

// scrape reads the unlabelled samples of a Prometheus text page.
func scrape(ctx context.Context, client *http.Client, base string) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", base+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if !ok || strings.HasPrefix(name, "#") || strings.Contains(name, "{") {
			continue
		}
		if v, err := strconv.ParseFloat(value, 64); err == nil {
			out[name] = v
		}
	}
	return out, sc.Err()
}

// rss returns the peak resident set (VmHWM) of process pid in bytes; 0
// when unknown.
func rss(pid int) float64 {
	if pid <= 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
			return kb * 1024
		}
	}
	return 0
}

// ms formats a latency in milliseconds.
func ms(d time.Duration) string {
	return strconv.FormatFloat(float64(d.Microseconds())/1000, 'f', 1, 64) + " ms"
}
