package writeback_test

import (
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hourglass-io/hourglass/internal/servertest"
	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/tsstore/influx"
	"github.com/hourglass-io/hourglass/tsstore/promtsdb"
	"github.com/hourglass-io/hourglass/writeback"
	"github.com/hourglass-io/hourglass/writeback/localcache"
)

const (
	benchSeries = 100_000
	benchBatch  = 1_000
)

// benchLabels are the label sets of the benchmark's series, built once.
var benchLabels = sync.OnceValue(func() []tsstore.Labels {
	ls := make([]tsstore.Labels, benchSeries)
	for i := range ls {
		ls[i] = tsstore.Labels{{Name: "merchant", Value: fmt.Sprintf("m%06d", i)}, {Name: "page", Value: fmt.Sprintf("/p%d", i%7)}}
	}
	return ls
})

// benchBatches returns n batches of benchBatch points over the series,
// timestamped within the last minutes before now.
func benchBatches(n int, now int64, seed uint64) [][]tsstore.Point {
	ls := benchLabels()
	r := rand.New(rand.NewPCG(seed, 1))
	out := make([][]tsstore.Point, n)
	for i := range out {
		b := make([]tsstore.Point, benchBatch)
		for j := range b {
			b[j] = tsstore.Point{Metric: "views", Labels: ls[r.IntN(len(ls))], Timestamp: now - r.Int64N(5*60_000), Value: float64(r.IntN(100))}
		}
		out[i] = b
	}
	return out
}

// asCells turns a batch into cells with the given Seq, as writing the
// points straight to a store would.
func asCells(b []tsstore.Point, seq uint32) []tsstore.Cell {
	idx := map[tsstore.CellID]int{}
	var cells []tsstore.Cell
	for _, p := range b {
		c := tsstore.Cell{Metric: p.Metric, Labels: p.Labels, Start: tsstore.CellStart(p.Timestamp, time.Minute), Seq: seq}
		id := c.ID()
		if i, ok := idx[id]; ok {
			cells[i].Add(p.Value)
			continue
		}
		c.Agg = tsstore.AggOf(p.Value)
		idx[id] = len(cells)
		cells = append(cells, c)
	}
	return cells
}

func benchEngine(b *testing.B, store tsstore.Store) (*writeback.Engine, func()) {
	cache, err := localcache.Open(filepath.Join(b.TempDir(), "cache"), &localcache.Options{Fsync: localcache.FsyncInterval})
	if err != nil {
		b.Fatal(err)
	}
	eng, err := writeback.New(cache, store, &writeback.Options{FlushInterval: -1, MaxCacheBytes: 8 << 30, MaxLate: 2 * time.Hour, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	return eng, func() {
		_ = eng.Close()
		_ = cache.Close()
	}
}

func openPromtsdb(b *testing.B) *promtsdb.Store {
	s, err := promtsdb.Open(filepath.Join(b.TempDir(), "tsdb"), nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	return s
}

// BenchmarkIngest compares acknowledged points/s through the engine
// (localcache with interval fsync, 1,000-point batches over 100,000
// series) with writing the same points straight to promtsdb as cells.
//
//	go test -run '^$' -bench Ingest -benchtime 2000x ./writeback/
func BenchmarkIngest(b *testing.B) {
	now := time.Now().UnixMilli()
	batches := benchBatches(500, now, 1)
	b.Run("engine+localcache", func(b *testing.B) {
		eng, done := benchEngine(b, openPromtsdb(b))
		defer done()
		b.ResetTimer()
		start := time.Now()
		for i := 0; i < b.N; i++ {
			if err := eng.Write(ctx, batches[i%len(batches)]); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N*benchBatch)/time.Since(start).Seconds(), "points/s")
		b.StopTimer()
	})
	b.Run("engine+localcache/4-writers", func(b *testing.B) {
		eng, done := benchEngine(b, openPromtsdb(b))
		defer done()
		b.ResetTimer()
		start := time.Now()
		var wg sync.WaitGroup
		next := make(chan int, 64)
		for w := 0; w < 4; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range next {
					if err := eng.Write(ctx, batches[i%len(batches)]); err != nil {
						b.Error(err)
						return
					}
				}
			}()
		}
		for i := 0; i < b.N; i++ {
			next <- i
		}
		close(next)
		wg.Wait()
		b.ReportMetric(float64(b.N*benchBatch)/time.Since(start).Seconds(), "points/s")
		b.StopTimer()
	})
	b.Run("promtsdb-direct", func(b *testing.B) {
		s := openPromtsdb(b)
		cells := make([][]tsstore.Cell, len(batches))
		b.ResetTimer()
		start := time.Now()
		for i := 0; i < b.N; i++ {
			// Each write is a new partial (Seq i), as if every batch were
			// flushed on its own.
			c := asCells(batches[i%len(batches)], uint32(i%59_999))
			cells[i%len(cells)] = c
			if err := s.Write(ctx, c); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N*benchBatch)/time.Since(start).Seconds(), "points/s")
	})
}

// BenchmarkIngestInflux compares the acknowledgement latency of
// 5,000-point batches through the engine (over an InfluxDB store) with
// writing them straight to InfluxDB.
//
//	scripts/test.sh -run '^$' -bench IngestInflux -benchtime 200x ./writeback/
func BenchmarkIngestInflux(b *testing.B) {
	u := os.Getenv(servertest.EnvInflux)
	if u == "" {
		b.Skip("set " + servertest.EnvInflux + " (scripts/test.sh does)")
	}
	db := fmt.Sprintf("bench_wb_%d", time.Now().UnixNano())
	s, err := influx.Open(u, &influx.Options{Database: db, WriteAPI: influx.WriteV1})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	if err := s.EnsureDatabase(ctx); err != nil {
		b.Fatal(err)
	}
	now := time.Now().UnixMilli()
	big := slices.Collect(slices.Chunk(slices.Concat(benchBatches(100, now, 2)...), 5_000))
	report := func(b *testing.B, lat []time.Duration) {
		slices.Sort(lat)
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	}
	b.Run("engine", func(b *testing.B) {
		eng, done := benchEngine(b, s)
		defer done()
		lat := make([]time.Duration, 0, b.N)
		for i := 0; i < b.N; i++ {
			t0 := time.Now()
			if err := eng.Write(ctx, big[i%len(big)]); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(t0))
		}
		report(b, lat)
	})
	b.Run("influx-direct", func(b *testing.B) {
		lat := make([]time.Duration, 0, b.N)
		for i := 0; i < b.N; i++ {
			c := asCells(big[i%len(big)], uint32(100+i%59_000))
			t0 := time.Now()
			if err := s.Write(ctx, c); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(t0))
		}
		report(b, lat)
	})
}

// BenchmarkFlush compares the flush's throughput into promtsdb (cells/s)
// with promtsdb's own write speed for the same cells.
//
//	go test -run '^$' -bench Flush -benchtime 3x ./writeback/
func BenchmarkFlush(b *testing.B) {
	now := time.Now().UnixMilli()
	batches := benchBatches(300, now, 3)
	b.Run("engine-flush", func(b *testing.B) {
		var cells int64
		var took time.Duration
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			eng, done := benchEngine(b, openPromtsdb(b))
			for _, bt := range batches {
				if err := eng.Write(ctx, bt); err != nil {
					b.Fatal(err)
				}
			}
			b.StartTimer()
			rep, err := eng.Flush(ctx)
			if err != nil {
				b.Fatal(err)
			}
			cells += rep.Cells
			took += rep.Duration
			b.StopTimer()
			done()
		}
		b.ReportMetric(float64(cells)/took.Seconds(), "cells/s")
	})
	b.Run("promtsdb-write", func(b *testing.B) {
		// The same cells the flush writes, in chunks of the same size.
		merged := map[tsstore.CellID]*tsstore.Cell{}
		for _, bt := range batches {
			for _, c := range asCells(bt, 0) {
				if m := merged[c.ID()]; m != nil {
					m.Merge(c.Agg)
				} else {
					merged[c.ID()] = &c
				}
			}
		}
		var all []tsstore.Cell
		for _, c := range merged {
			all = append(all, *c)
		}
		// In time order, as the flush writes them (promtsdb appends
		// cells above a series' newest sample without reading back).
		slices.SortFunc(all, func(a, b tsstore.Cell) int { return int(a.Start - b.Start) })
		var n int64
		var took time.Duration
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			s := openPromtsdb(b)
			b.StartTimer()
			t0 := time.Now()
			for c := range slices.Chunk(all, writeback.DefaultFlushChunk) {
				if err := s.Write(ctx, c); err != nil {
					b.Fatal(err)
				}
			}
			took += time.Since(t0)
			n += int64(len(all))
		}
		b.ReportMetric(float64(n)/took.Seconds(), "cells/s")
	})
}

// BenchmarkQueryDuringFlush measures one merchant's last 24 hours at
// 1-minute steps through the engine while flushes run, against the same
// query on promtsdb alone.
//
//	go test -run '^$' -bench QueryDuringFlush -benchtime 300x ./writeback/
func BenchmarkQueryDuringFlush(b *testing.B) {
	now := time.Now().UnixMilli()
	m, _ := tsstore.NewMatcher(tsstore.MatchEqual, "merchant", "m000042")
	q := tsstore.Query{Metric: "views", Matchers: []tsstore.Matcher{m}, From: now - 24*time.Hour.Milliseconds(), To: now + 60_000, Step: time.Minute}
	// A day of history for the merchant in the store, and load for all.
	history := make([]tsstore.Point, 0, 24*60)
	for t := now - 24*time.Hour.Milliseconds(); t < now-10*60_000; t += 60_000 {
		history = append(history, tsstore.Point{Metric: "views", Labels: benchLabels()[42], Timestamp: t, Value: 1})
	}
	batches := benchBatches(200, now, 4)
	measure := func(b *testing.B, query func() error) {
		lat := make([]time.Duration, 0, b.N)
		for i := 0; i < b.N; i++ {
			t0 := time.Now()
			if err := query(); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(t0))
		}
		slices.Sort(lat)
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	}
	b.Run("engine-while-flushing", func(b *testing.B) {
		store := openPromtsdb(b)
		eng, done := benchEngine(b, store)
		defer done()
		if err := store.Write(ctx, asCells(history, 0)); err != nil {
			b.Fatal(err)
		}
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				for _, bt := range batches[(i*20)%len(batches):][:20] {
					if err := eng.Write(ctx, bt); err != nil {
						b.Error(err)
						return
					}
				}
				if _, err := eng.Flush(ctx); err != nil {
					b.Error(err)
					return
				}
			}
		}()
		b.ResetTimer()
		measure(b, func() error { _, err := eng.Query(ctx, q); return err })
		b.StopTimer()
		close(stop)
		wg.Wait()
	})
	b.Run("promtsdb-alone", func(b *testing.B) {
		store := openPromtsdb(b)
		if err := store.Write(ctx, asCells(history, 0)); err != nil {
			b.Fatal(err)
		}
		for i, bt := range batches {
			if err := store.Write(ctx, asCells(bt, uint32(i+1))); err != nil {
				b.Fatal(err)
			}
		}
		b.ResetTimer()
		measure(b, func() error { _, err := store.Query(ctx, q); return err })
	})
}
