package promtsdb_test

import (
	"context"
	"math"
	"runtime"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"

	"github.com/hourglass-io/hourglass/internal/cputime"
	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/tsstore/promtsdb"
)

const benchSeries = 10_000

// bareWriter writes the samples of one cell per series and minute through
// a bare tsdb appender with cached series references: the physical limit.
type bareWriter struct {
	db    *tsdb.DB
	lsets [benchSeries][4]labels.Labels
	refs  [benchSeries][4]storage.SeriesRef
}

func newBareWriter(b *testing.B) *bareWriter {
	db, err := tsdb.Open(b.TempDir(), nil, nil, bareOptions(), nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = db.Close() })
	w := &bareWriter{db: db}
	for m := range w.lsets {
		for k, suf := range []string{":count", ":sum", ":min", ":max"} {
			w.lsets[m][k] = labels.FromStrings("__name__", "orders"+suf, "merchant", "m"+strconv.Itoa(m))
		}
	}
	return w
}

func (w *bareWriter) write(b *testing.B, i int) {
	app := w.db.AppenderV2(context.Background())
	ts := base + int64(i)*minute
	for m := range w.lsets {
		vals := [4]float64{1, float64(m), float64(m), float64(m)}
		for k := range vals {
			ref, err := app.Append(w.refs[m][k], w.lsets[m][k], 0, ts, vals[k], nil, nil, storage.AppendV2Options{})
			if err != nil {
				b.Fatal(err)
			}
			w.refs[m][k] = ref
		}
	}
	if err := app.Commit(); err != nil {
		b.Fatal(err)
	}
}

// storeWriter writes the same cells through Store.Write.
type storeWriter struct {
	s     *promtsdb.Store
	cells []tsstore.Cell
}

func newStoreWriter(b *testing.B) *storeWriter {
	s, err := promtsdb.Open(b.TempDir(), nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	w := &storeWriter{s: s, cells: make([]tsstore.Cell, benchSeries)}
	for m := range w.cells {
		w.cells[m] = tsstore.Cell{Metric: "orders", Labels: tsstore.Labels{{Name: "merchant", Value: "m" + strconv.Itoa(m)}},
			Agg: tsstore.Agg{Count: 1, Sum: float64(m), Min: float64(m), Max: float64(m)}}
	}
	return w
}

func (w *storeWriter) write(b *testing.B, i int) {
	for m := range w.cells {
		w.cells[m].Start = base + int64(i)*minute
	}
	if err := w.s.Write(context.Background(), w.cells); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkWrite writes, per operation, one cell to each of 10,000 series
// (the next minute each time): through a bare tsdb appender with cached
// series references (the physical limit), through Store.Write, and both
// alternately in one loop ("paired", which reports x-bare, the ratio of
// the rates, with less noise from a shared machine). Operation 0, not
// timed, creates the series. Keep -benchtime below 180x: beyond 3 hours of
// data the TSDB compacts its head in the background.
//
//	go test -run '^$' -bench 'Write' -benchtime 100x ./tsstore/promtsdb/
func BenchmarkWrite(b *testing.B) {
	report := func(b *testing.B, prefix string, d time.Duration) float64 {
		rate := float64(b.N*benchSeries) / d.Seconds()
		b.ReportMetric(rate, prefix+"cells/s")
		return rate
	}
	b.Run("bare", func(b *testing.B) {
		w := newBareWriter(b)
		w.write(b, 0)
		b.ResetTimer()
		for i := 1; i <= b.N; i++ {
			w.write(b, i)
		}
		report(b, "", b.Elapsed())
	})
	b.Run("store", func(b *testing.B) {
		w := newStoreWriter(b)
		w.write(b, 0)
		b.ResetTimer()
		for i := 1; i <= b.N; i++ {
			w.write(b, i)
		}
		report(b, "", b.Elapsed())
	})
	b.Run("paired", func(b *testing.B) {
		bw, sw := newBareWriter(b), newStoreWriter(b)
		bw.write(b, 0)
		sw.write(b, 0)
		var bare, store time.Duration
		b.ResetTimer()
		for i := 1; i <= b.N; i++ {
			t0 := time.Now()
			bw.write(b, i)
			t1 := time.Now()
			sw.write(b, i)
			bare, store = bare+t1.Sub(t0), store+time.Since(t1)
		}
		b.StopTimer()
		rb, rs := report(b, "bare-", bare), report(b, "store-", store)
		b.ReportMetric(rs/rb, "x-bare")
	})
}

// bareOptions are the tsdb options promtsdb.Open uses by default.
func bareOptions() *tsdb.Options {
	o := tsdb.DefaultOptions()
	o.RetentionDuration = 0
	o.OutOfOrderTimeWindow = promtsdb.DefaultOutOfOrderWindow.Milliseconds()
	o.MaxBlockDuration = promtsdb.DefaultMaxBlockDuration.Milliseconds()
	return o
}

// BenchmarkQuery measures query latency (p50 over the iterations) on two
// data sets written through the Store and compacted:
//
//   - merchant-30d-step1h: one merchant's series out of 20, 30 days of
//     1-minute cells (43,200 cells), at Step 1h;
//   - groupby-1000-24h-step5m: 1,000 merchants' series (24 h of 1-minute
//     cells each, 1.44 M cells) grouped by plan (3 values) at Step 5m.
//
// store-heap-MB is the Go heap in use with the data set open.
//
//	go test -run '^$' -bench 'Query' -benchtime 20x ./tsstore/promtsdb/
func BenchmarkQuery(b *testing.B) {
	var s30, sGroup *promtsdb.Store
	var heap30, heapGroup float64
	parent := b
	b.Run("merchant-30d-step1h", func(b *testing.B) {
		if s30 == nil {
			s30, heap30 = queryFixture(parent, 20, 30*24*60)
		}
		q := tsstore.Query{Metric: "orders", Matchers: []tsstore.Matcher{{Type: tsstore.MatchEqual, Name: "merchant", Value: "m7"}},
			From: base, To: base + 30*24*60*minute, Step: time.Hour}
		benchQuery(b, s30, q, 1, 30*24)
		b.ReportMetric(heap30, "store-heap-MB")
	})
	b.Run("groupby-1000-24h-step5m", func(b *testing.B) {
		if sGroup == nil {
			sGroup, heapGroup = queryFixture(parent, 1000, 24*60)
		}
		q := tsstore.Query{Metric: "orders", From: base, To: base + 24*60*minute, Step: 5 * time.Minute, GroupBy: []string{"plan"}}
		benchQuery(b, sGroup, q, 3, 24*12)
		b.ReportMetric(heapGroup, "store-heap-MB")
	})
}

func benchQuery(b *testing.B, s *promtsdb.Store, q tsstore.Query, wantSeries, wantBuckets int) {
	b.ReportAllocs()
	durs := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		r, err := s.Query(context.Background(), q)
		durs = append(durs, time.Since(start))
		if err != nil {
			b.Fatal(err)
		}
		if len(r.Series) != wantSeries || len(r.Series[0].Buckets) != wantBuckets {
			b.Fatalf("query returned %d series, the first with %d buckets; want %d and %d", len(r.Series), len(r.Series[0].Buckets), wantSeries, wantBuckets)
		}
	}
	b.StopTimer()
	slices.Sort(durs)
	b.ReportMetric(float64(durs[len(durs)/2].Microseconds())/1000, "p50-ms")
}

// queryFixture writes minutes cells for each of merchants series, labelled
// merchant and plan, compacts the TSDB and returns the store (closed when
// parent ends) with the Go heap in use, in MB.
func queryFixture(parent *testing.B, merchants, minutes int) (*promtsdb.Store, float64) {
	s, err := promtsdb.Open(parent.TempDir(), nil)
	if err != nil {
		parent.Fatal(err)
	}
	parent.Cleanup(func() { _ = s.Close() })
	series := make([]tsstore.Labels, merchants)
	for m := range series {
		series[m] = tsstore.Labels{{Name: "merchant", Value: "m" + strconv.Itoa(m)}, {Name: "plan", Value: "p" + strconv.Itoa(m%3)}}
	}
	const perBatch = 10_000
	batch := make([]tsstore.Cell, 0, perBatch)
	for i := 0; i < minutes; i++ {
		for m, ls := range series {
			batch = append(batch, tsstore.Cell{Metric: "orders", Labels: ls, Start: base + int64(i)*minute, Agg: tsstore.AggOf(float64(m + i%7))})
		}
		if len(batch) >= perBatch || i == minutes-1 {
			if err := s.Write(context.Background(), batch); err != nil {
				parent.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	var db *tsdb.DB
	s.As(&db)
	if err := db.Compact(context.Background()); err != nil {
		parent.Fatal(err)
	}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return s, float64(ms.HeapInuse) / (1 << 20)
}

// BenchmarkWriteFlushes writes what a server's flushes write under
// sustained ingest (issue 19): every flush, a cell per series for each of
// the last 30 minutes, the flush's Seq in each, oldest minute first, in
// Writes of writeback.DefaultFlushChunk cells. All but the newest minute
// are below what their series has stored: the TSDB takes them out of
// order. One op is one flush; cells/s and CPU per cell are reported.
func BenchmarkWriteFlushes(b *testing.B) {
	// one-commit is the TSDB as it comes: one commit per Write.
	b.Run("one-commit", func(b *testing.B) { benchWriteFlushes(b, math.MaxInt) })
	b.Run("store", func(b *testing.B) { benchWriteFlushes(b, 0) })
}

func benchWriteFlushes(b *testing.B, commitEvery int) {
	const series, minutes, chunk = 5_000, 30, 10_000
	s, err := promtsdb.Open(b.TempDir(), nil)
	if err != nil {
		b.Fatal(err)
	}
	if commitEvery > 0 {
		promtsdb.CommitEvery(s, commitEvery)
	}
	b.Cleanup(func() { _ = s.Close() })
	cells := make([]tsstore.Cell, 0, series*minutes)
	for j := range minutes {
		for m := range series {
			cells = append(cells, tsstore.Cell{Metric: "orders", Labels: tsstore.Labels{{Name: "merchant", Value: "m" + strconv.Itoa(m)}},
				Start: base + int64(j)*minute, Agg: tsstore.AggOf(float64(m))})
		}
	}
	flush := func(seq int) {
		for i := range cells {
			cells[i].Seq = uint32(seq)
		}
		for i := 0; i < len(cells); i += chunk {
			if err := s.Write(context.Background(), cells[i:min(i+chunk, len(cells))]); err != nil {
				b.Fatal(err)
			}
		}
	}
	flush(0) // the series exist, and the window is stored once
	b.ResetTimer()
	cpu0 := cputime.Used()
	t0 := time.Now()
	for i := range b.N {
		flush(1 + i)
	}
	n := float64(b.N * len(cells))
	b.ReportMetric(n/time.Since(t0).Seconds(), "cells/s")
	b.ReportMetric(float64(cputime.Used()-cpu0)/n, "cpu-ns/cell")
}
