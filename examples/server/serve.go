package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/hourglass-io/hourglass/examples/server/web"
	"github.com/hourglass-io/hourglass/httpapi"
	"github.com/hourglass-io/hourglass/reprocess"
	"github.com/hourglass-io/hourglass/tsstore/archive"
	"github.com/hourglass-io/hourglass/tsstore/promtsdb"
	"github.com/hourglass-io/hourglass/writeback"
	"github.com/hourglass-io/hourglass/writeback/amqpsource"
	"github.com/hourglass-io/hourglass/writeback/peerhttp"
)

// serve runs the server of c until ctx is done, then shuts down gracefully:
// stop accepting, drain the requests in flight, close the engine (which
// flushes), then the cache, store and archives.
func serve(ctx context.Context, c *config, stdout, stderr io.Writer) (err error) {
	log := slog.New(slog.NewTextHandler(stderr, nil))
	if err := os.MkdirAll(c.dataDir, 0o700); err != nil {
		return err
	}
	toks, created, err := httpapi.OpenTokenFile(c.tokens)
	if err != nil {
		return err
	}
	b, err := openBackends(ctx, c, log)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := b.close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("closing the backends: %w", cerr))
		}
	}()

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if b.repl != nil {
		reg.MustRegister(b.repl.Collector())
	}
	httpMetrics := httpapi.NewMetrics()
	reg.MustRegister(httpMetrics)
	metrics := newFlushMetrics(reg, c.flushBudget, httpMetrics)
	reg.MustRegister(web.SettingsMetrics(c.flushInterval, c.maxCacheBytes)...)

	// Reads go through a Switchable, which serves a reprocessed version's
	// range from the version once switched to; writes go to the live store.
	versionStore := &promtsdb.Options{CellWidth: b.store.CellWidth()}
	versions, err := reprocess.OpenVersions(filepath.Join(c.dataDir, "reprocess"), &reprocess.VersionsOptions{Store: versionStore})
	if err != nil {
		return err
	}
	dryRuns, err := reprocess.OpenVersions(filepath.Join(c.dataDir, "reprocess-dry-run"), &reprocess.VersionsOptions{Store: versionStore})
	if err != nil {
		return err
	}
	sw, err := reprocess.NewSwitchable(b.store, versions)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, sw.Close()) }() // after the engine's Close, before the backends'
	if cur := sw.Current(); cur != "" {
		b.describe = append(b.describe, "reprocess: version "+cur+" serves reads of its range")
	}

	eo := &writeback.Options{
		Processor:     processors[c.processor],
		Archives:      b.archives,
		FlushInterval: c.flushInterval,
		FlushBudget:   c.flushBudget,
		FlushWriters:  c.flushWriters,
		FlushWaiters:  c.flushWaiters,
		FlushStall:    c.flushStall,
		MaxCacheBytes: c.maxCacheBytes,
		Logger:        log,
		OnFlush:       metrics.onFlush,
	}
	var peers *peerhttp.Client
	switch {
	case b.registry != nil:
		// The writer id (and archive source) is the prefix's own, which
		// the member that adopts this prefix if this server dies uses too
		// (see rediscache.FlushAdopted).
		eo.Peers = b.registry
		b.adoptOpts = writeback.Options{Processor: eo.Processor, Archives: b.archives, FlushBudget: c.flushBudget, Logger: log}
		close(b.opened)
	case c.peers != "":
		peers = &peerhttp.Client{Peers: splitList(c.peers), Secret: toks.ClusterSecret()}
		eo.Peers = peers
		b.describe = append(b.describe, "peers: "+strings.Join(peers.Peers, ", ")+" (their cached cells, over "+peerhttp.Path+")")
	}
	eng, err := writeback.New(b.cache, sw, eo)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := eng.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("closing the engine: %w", cerr))
		} else {
			log.Info("engine closed: cache flushed to the store and the archives")
		}
	}()
	reg.MustRegister(eng.Collector())
	b.describe = append(b.describe, "writer id: "+eng.WriterID()+" (names this server's cells in the store; stable per cache)")

	if c.amqpURL != "" {
		cons, err := amqpsource.Open(ctx, c.amqpURL, eng, filepath.Join(c.dataDir, "amqp"), &amqpsource.Options{
			WriteQueue: c.amqpWriteQueue, ReadQueue: c.amqpReadQueue, Logger: log,
		})
		if err != nil {
			return err
		}
		defer func() { err = errors.Join(err, cons.Close()) }() // before the engine's Close
		reg.MustRegister(cons.Collector())
		b.describe = append(b.describe, "amqp: consuming "+c.amqpWriteQueue+" (writes) and "+c.amqpReadQueue+" (reads)")
	}

	rm := reprocess.NewMetrics()
	reg.MustRegister(rm)
	var arch archive.Archive
	if len(b.archives) > 0 {
		arch = b.archives[0]
	}
	jobs := newReprocessJobs(eng, arch, versions, dryRuns, sw, rm, log)
	defer jobs.Close() // before the engine's Close

	rate := c.rate
	if rate == 0 { // -rate 0 means unlimited
		rate = -1
	}
	h, err := httpapi.New(eng, toks, &httpapi.Options{
		MaxBody: c.maxBody, Rate: rate, Burst: c.burst, DecodeEvent: decodeEvent,
		Metrics: httpMetrics, Logger: log, Now: time.Now,
	})
	if err != nil {
		return err
	}
	a := &api{
		http: h, eng: eng, jobs: jobs, tokens: toks, metrics: httpMetrics, reg: reg, log: log, now: time.Now,
	}
	ln, err := net.Listen("tcp", c.addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: a.handler(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	if c.pprof != "" {
		stop, err := servePprof(c.pprof, log)
		if err != nil {
			return err
		}
		defer stop()
	}
	printBanner(stdout, baseURL(ln.Addr()), c, toks, created, b.describe)
	a.ready.Store(true)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	var lost error
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	case lost = <-b.leaseLost:
		log.Error("another server took this server's Redis prefix over (this one was paused or cut off past its lease): shutting down", "err", lost)
	}
	log.Info("shutting down: draining requests in flight")
	a.ready.Store(false)
	sctx, cancel := context.WithTimeout(context.Background(), c.shutdown)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("requests still in flight at the shutdown timeout", "err", err)
		_ = srv.Close()
	}
	<-served
	return lost
}

// baseURL returns the URL clients on this machine reach a listener at.
func baseURL(addr net.Addr) string {
	ta, ok := addr.(*net.TCPAddr)
	if !ok || ta.IP.IsUnspecified() {
		port := 0
		if ok {
			port = ta.Port
		}
		return fmt.Sprintf("http://localhost:%d", port)
	}
	return "http://" + ta.String()
}
