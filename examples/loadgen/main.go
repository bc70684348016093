package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// options are loadgen's flags.
type options struct {
	url, tokens, admin     string
	merchants, concurrency int
	batch                  int
	duration               time.Duration
	requests               int64
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var o options
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.url, "url", "http://localhost:8080", "server URL (loopback only)")
	fs.StringVar(&o.tokens, "tokens", "data/tokens.json", "the server's tokens file, for its admin token")
	fs.StringVar(&o.admin, "admin-token", "", "admin token (instead of -tokens)")
	fs.IntVar(&o.merchants, "merchants", 1000, "simulated merchants (one token each, issued by POST /v1/admin/merchants)")
	fs.IntVar(&o.concurrency, "concurrency", 16, "concurrent clients")
	fs.IntVar(&o.batch, "batch", 20, "events per write request")
	fs.DurationVar(&o.duration, "duration", 30*time.Second, "how long to run")
	fs.Int64Var(&o.requests, "requests", 0, "stop after this many requests; 0 means no limit")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.merchants < 1 || o.concurrency < 1 || o.batch < 1 || o.duration <= 0 {
		return fmt.Errorf("-merchants, -concurrency, -batch and -duration must be positive")
	}
	if err := checkLoopback(o.url); err != nil {
		return err
	}
	if o.admin == "" {
		b, err := os.ReadFile(o.tokens)
		if err != nil {
			return fmt.Errorf("reading the admin token: %w (give -tokens or -admin-token)", err)
		}
		var f struct {
			Admin string `json:"admin_token"`
		}
		if err := json.Unmarshal(b, &f); err != nil || f.Admin == "" {
			return fmt.Errorf("%s has no admin_token", o.tokens)
		}
		o.admin = f.Admin
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: o.concurrency}, Timeout: 30 * time.Second}
	defer client.CloseIdleConnections()

	toks, err := issueTokens(ctx, client, o)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "%d merchant tokens issued; running %v with %d clients (2 writes of %d events : 1 read)\n", len(toks), o.duration, o.concurrency, o.batch)

	rctx, cancel := context.WithTimeout(ctx, o.duration)
	defer cancel()
	var sent atomic.Int64
	var writesDone, readsDone atomic.Int64
	results := make([][2]latencies, o.concurrency)
	var wg sync.WaitGroup
	start := time.Now()
	for w := range o.concurrency {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), uint64(start.UnixNano())))
			res := &results[w]
			for rctx.Err() == nil {
				n := sent.Add(1)
				if o.requests > 0 && n > o.requests {
					cancel()
					return
				}
				tok := toks[r.IntN(len(toks))]
				if n%3 == 0 {
					do(rctx, client, "GET", o.url+readPath(r), tok, nil, &res[1])
					readsDone.Add(1)
				} else {
					body := writeBody(r, o.batch)
					if do(rctx, client, "POST", o.url+"/v1/events", tok, body, &res[0]) {
						res[0].events += o.batch
					}
					writesDone.Add(1)
				}
			}
		})
	}
	progressDone := make(chan struct{})
	go func() {
		defer close(progressDone)
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-rctx.Done():
				return
			case <-t.C:
				progress(stderr, time.Since(start), o, writesDone.Load(), readsDone.Load())
			}
		}
	}()
	wg.Wait()
	cancel()
	<-progressDone
	elapsed := time.Since(start)
	progress(stderr, elapsed, o, writesDone.Load(), readsDone.Load())
	fmt.Fprintln(stderr)

	var wr, rd latencies
	for i := range results {
		wr.merge(&results[i][0])
		rd.merge(&results[i][1])
	}
	report(stdout, elapsed, o, &wr, &rd)
	return nil
}

// checkLoopback refuses a URL whose host is not a loopback address.
func checkLoopback(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("-url: %w", err)
	}
	ips, err := net.LookupIP(u.Hostname())
	if err != nil {
		return fmt.Errorf("-url: %w", err)
	}
	for _, ip := range ips {
		if !ip.IsLoopback() {
			return fmt.Errorf("-url %s: loadgen only sends traffic to loopback addresses", raw)
		}
	}
	return nil
}

// issueTokens gets one token per merchant from the admin endpoint.
func issueTokens(ctx context.Context, client *http.Client, o options) ([]string, error) {
	toks := make([]string, o.merchants)
	for i := range toks {
		body := fmt.Sprintf(`{"merchant":"load-%05d"}`, i)
		req, err := http.NewRequestWithContext(ctx, "POST", o.url+"/v1/admin/merchants", strings.NewReader(body))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Authorization", "Bearer "+o.admin)
		resp, err := client.Do(req)
		if err != nil {
			return nil, fmt.Errorf("issuing merchant tokens: %w", err)
		}
		var r struct{ Token, Error string }
		err = json.NewDecoder(resp.Body).Decode(&r)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("issuing merchant tokens: %s %v %s", resp.Status, err, r.Error)
		}
		toks[i] = r.Token
	}
	return toks, nil
}

// do sends one request and records its latency or its failure; it reports
// success.
func do(ctx context.Context, client *http.Client, method, u, tok string, body []byte, l *latencies) bool {
	req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
	if err != nil {
		l.fail(err.Error())
		return false
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	t0 := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		if ctx.Err() == nil {
			l.fail("transport error")
		}
		return false
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	d := time.Since(t0)
	if resp.StatusCode/100 != 2 {
		l.fail(resp.Status)
		return false
	}
	l.ok = append(l.ok, d)
	return true
}

// progress draws the progress line.
func progress(w io.Writer, elapsed time.Duration, o options, writes, reads int64) {
	frac := elapsed.Seconds() / o.duration.Seconds()
	if o.requests > 0 {
		frac = max(frac, float64(writes+reads)/float64(o.requests))
	}
	frac = min(frac, 1)
	const width = 30
	n := int(frac * width)
	fmt.Fprintf(w, "\r[%s%s] %3.0f%% %6.1fs  writes %8d (%6.0f/s)  reads %8d (%6.0f/s)",
		strings.Repeat("#", n), strings.Repeat(".", width-n), frac*100, elapsed.Seconds(),
		writes, float64(writes)/elapsed.Seconds(), reads, float64(reads)/elapsed.Seconds())
}

// report prints throughput and latency percentiles.
func report(w io.Writer, elapsed time.Duration, o options, wr, rd *latencies) {
	ws, rs := wr.summarize(elapsed), rd.summarize(elapsed)
	fmt.Fprintf(w, "loadgen: %v, %d merchants, %d clients, %d events per write\n", elapsed.Round(time.Millisecond), o.merchants, o.concurrency, o.batch)
	fmt.Fprintf(w, "%-6s %9s %10s %10s %10s %10s %12s\n", "op", "ok", "req/s", "p50", "p99", "max", "events/s")
	fmt.Fprintf(w, "%-6s %9d %10.1f %10v %10v %10v %12.0f\n", "write", ws.count, ws.perSecond, ws.p50.Round(10*time.Microsecond), ws.p99.Round(10*time.Microsecond), ws.maxLat.Round(10*time.Microsecond), float64(wr.events)/elapsed.Seconds())
	fmt.Fprintf(w, "%-6s %9d %10.1f %10v %10v %10v\n", "read", rs.count, rs.perSecond, rs.p50.Round(10*time.Microsecond), rs.p99.Round(10*time.Microsecond), rs.maxLat.Round(10*time.Microsecond))
	for _, x := range []struct {
		op string
		l  *latencies
	}{{"write", wr}, {"read", rd}} {
		keys := make([]string, 0, len(x.l.errors))
		for k := range x.l.errors {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(w, "%s errors: %d × %s\n", x.op, x.l.errors[k], k)
		}
	}
}
