package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/hourglass-io/hourglass/balancer"
	"github.com/hourglass-io/hourglass/balancer/proxy"
	"github.com/hourglass-io/hourglass/httpapi"
)

const lbUsage = `Usage: server lb -backends URL,URL,... [flags]

A load balancer in front of several servers with merchant affinity: requests
are hashed by their token (Authorization header, or the p parameter of
InfluxDB 1.x clients) on a consistent-hash ring, so each merchant normally stays
on one server (a preference for speed: cells are writer-scoped, so a merchant
that moves is still counted exactly; see "Running several servers"). Servers
are health-checked; one that fails its checks is taken out and its merchants
move to the next server on the ring. Only GET and HEAD requests are retried on
another server; a write goes to its merchant's server only, and a 503 with
Retry-After (a full cache) is passed back to the client without counting
against the server's health. The balancer's own endpoints are
/lb/healthz and /lb/metrics; everything else is proxied. Give the servers the
same -tokens file. Flags:
`

// runBalancer runs the balancer until ctx is done.
func runBalancer(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var (
		addr, backends, healthPath string
		interval                   time.Duration
		loadFactor                 float64
	)
	f := newEnvFlags("server lb", stderr, lbUsage)
	f.str(&addr, "addr", "HOURGLASS_ADDR", DefaultAddr, "listen address")
	f.str(&backends, "backends", "HOURGLASS_BACKENDS", "", "comma-separated server URLs (required)")
	f.str(&healthPath, "health-path", "HOURGLASS_HEALTH_PATH", "/healthz", "path of the active health check (2xx = healthy); /readyz also takes a draining server out")
	f.dur(&interval, "check-interval", "HOURGLASS_CHECK_INTERVAL", 2*time.Second, "time between health checks")
	f.f64(&loadFactor, "load-factor", "HOURGLASS_LOAD_FACTOR", -1,
		"bound of consistent hashing with bounded load (e.g. 1.25: a server takes a merchant while its requests in flight are below 1.25 × the mean); "+
			"negative means no bound. A bound moves a hot merchant's overflow to another server, which then holds some of its recent writes: "+
			"use it only with a shared store and short flush intervals")
	if err := f.parse(args); err != nil {
		return err
	}
	urls := splitList(backends)
	if len(urls) == 0 {
		return fmt.Errorf("-backends: at least one server URL is required")
	}
	ups, err := proxy.Backends(urls...)
	if err != nil {
		return err
	}
	b := balancer.New(balancer.ConsistentHash(&balancer.HashOptions{LoadFactor: loadFactor}), &balancer.Options[*url.URL]{
		Name:          "servers",
		Probe:         proxy.Probe(&http.Client{Timeout: 2 * time.Second}, healthPath),
		CheckInterval: interval,
	})
	defer b.Close()
	if err := b.Add(ups...); err != nil {
		return err
	}
	b.CheckHealth(ctx)

	reg := prometheus.NewRegistry()
	reg.MustRegister(b.Collector())
	mux := http.NewServeMux()
	mux.Handle("GET /lb/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /lb/healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.Handle("/", proxy.New(b, &proxy.Options{
		Key:      func(r *http.Request) string { return httpapi.InfluxV1TokenOf(r) }, // affinity only: the servers authenticate
		ErrorLog: log.New(stderr, "lb: ", log.LstdFlags),
	}))

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(stdout, "hourglass balancer listening on %s, in front of %v (merchant affinity by token, health checks on %s)\n", baseURL(ln.Addr()), urls, healthPath)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), DefaultShutdownTimeout)
	defer cancel()
	_ = srv.Shutdown(sctx)
	<-served
	return nil
}
