package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"os/signal"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hourglass-io/hourglass/writeback/amqpsource"
)

// options are loadgen's flags.
type options struct {
	url, tokens, admin     string
	queue                  string
	writeQueue, readQueue  string
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
	if len(args) > 0 && args[0] == "bench" {
		return runBench(ctx, args[1:], stdout, stderr)
	}
	var o options
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.url, "url", "http://localhost:8080", "server URL (loopback only)")
	fs.StringVar(&o.queue, "queue", "", "RabbitMQ URL (loopback only), such as amqp://guest:guest@127.0.0.1:5672/: publish the writes to the server's write queue (amqpsource.Publisher, confirms on) and send the reads by request/reply, instead of HTTP; the server runs with -amqp-url")
	fs.StringVar(&o.writeQueue, "write-queue", amqpsource.DefaultWriteQueue, "write queue (-queue; the server's -amqp-write-queue)")
	fs.StringVar(&o.readQueue, "read-queue", amqpsource.DefaultReadQueue, "read queue (-queue; the server's -amqp-read-queue)")
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
	dest := o.url
	if o.queue != "" {
		dest = o.queue
	}
	if err := checkLoopback(dest); err != nil {
		return err
	}
	var tg target
	if o.queue != "" {
		q, err := openQueueTarget(ctx, o)
		if err != nil {
			return err
		}
		tg = q
		fmt.Fprintf(stderr, "publishing to %s (confirms on), reading by request/reply on %s; running %v with %d clients (2 writes of %d events : 1 read) for %d merchants\n",
			o.writeQueue, o.readQueue, o.duration, o.concurrency, o.batch, o.merchants)
	} else {
		h, err := openHTTPTarget(ctx, o)
		if err != nil {
			return err
		}
		tg = h
		fmt.Fprintf(stderr, "%d merchant tokens issued; running %v with %d clients (2 writes of %d events : 1 read)\n", o.merchants, o.duration, o.concurrency, o.batch)
	}
	defer tg.close()

	// rctx bounds the run; an operation in flight when it ends completes
	// (under ctx), so that what was sent is counted.
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
					return
				}
				m := r.IntN(o.merchants)
				if n%3 == 0 {
					tg.read(ctx, w, r, m, &res[1])
					readsDone.Add(1)
				} else {
					if tg.write(ctx, w, r, m, &res[0]) {
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
		return fmt.Errorf("%s: %w", raw, err)
	}
	ips, err := net.LookupIP(u.Hostname())
	if err != nil {
		return fmt.Errorf("%s: %w", raw, err)
	}
	for _, ip := range ips {
		if !ip.IsLoopback() {
			return fmt.Errorf("%s: loadgen only sends traffic to loopback addresses", raw)
		}
	}
	return nil
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
	via := "HTTP " + o.url
	if o.queue != "" {
		via = "AMQP " + redactURL(o.queue) + " (queues " + o.writeQueue + ", " + o.readQueue + ")"
	}
	fmt.Fprintf(w, "loadgen: %v over %s, %d merchants, %d clients, %d events per write\n", elapsed.Round(time.Millisecond), via, o.merchants, o.concurrency, o.batch)
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

// redactURL drops the password of a URL.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	return u.Redacted()
}
