package rediscache_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hourglass-io/hourglass/internal/servertest"
	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/tsstore/memstore"
	"github.com/hourglass-io/hourglass/writeback"
	"github.com/hourglass-io/hourglass/writeback/rediscache"
)

const benchBatch = 1000

// benchBatches returns pre-built batches of benchBatch points within the
// current minute: 10,000 merchants, 4 metrics, 8 pages. zipf draws the
// merchants from a Zipf distribution (s = 1.1: web traffic, a few large
// merchants and a long tail); otherwise uniformly, so that nearly every
// point of a batch is a cell of its own (the worst case for the cache).
func benchBatches(zipf bool) [][]tsstore.Point {
	r := rand.New(rand.NewPCG(1, 1))
	z := rand.NewZipf(r, 1.1, 1, 9999)
	metrics := []string{"views", "orders", "revenue", "sessions"}
	now := time.Now().UnixMilli()
	out := make([][]tsstore.Point, 64)
	for b := range out {
		ps := make([]tsstore.Point, benchBatch)
		for i := range ps {
			m := r.IntN(10000)
			if zipf {
				m = int(z.Uint64())
			}
			ls, _ := tsstore.NewLabels("merchant", "m"+strconv.Itoa(m), "page", "/p"+strconv.Itoa(r.IntN(8)))
			ps[i] = tsstore.Point{Metric: metrics[r.IntN(4)], Labels: ls, Timestamp: now - r.Int64N(1000), Value: float64(r.IntN(1000))}
		}
		out[b] = ps
	}
	return out
}

func usedMemory(b *testing.B, cl *redis.Client) int64 {
	info, err := cl.Info(context.Background(), "memory").Result()
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(line, "used_memory:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return n
		}
	}
	b.Fatal("INFO memory has no used_memory")
	return 0
}

// commandMicros returns the server time spent in commands since the last
// CONFIG RESETSTAT (INFO commandstats).
func commandMicros(b *testing.B, cl *redis.Client) float64 {
	info, err := cl.Info(context.Background(), "commandstats").Result()
	if err != nil {
		b.Fatal(err)
	}
	var total float64
	for _, line := range strings.Split(info, "\n") {
		if strings.HasPrefix(line, "cmdstat_") && !strings.HasPrefix(line, "cmdstat_info:") {
			for _, kv := range strings.Split(line[strings.IndexByte(line, ':')+1:], ",") {
				if v, ok := strings.CutPrefix(kv, "usec="); ok {
					n, _ := strconv.ParseFloat(v, 64)
					total += n
				}
			}
		}
	}
	return total
}

// serverCPU returns the redis-server process's CPU time (INFO cpu).
func serverCPU(b *testing.B, cl *redis.Client) time.Duration {
	info, err := cl.Info(context.Background(), "cpu").Result()
	if err != nil {
		b.Fatal(err)
	}
	var total float64
	for _, line := range strings.Split(info, "\n") {
		for _, k := range []string{"used_cpu_sys:", "used_cpu_user:"} {
			if v, ok := strings.CutPrefix(line, k); ok {
				n, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
				total += n
			}
		}
	}
	return time.Duration(total * float64(time.Second))
}

// clientCPU returns this process's CPU time.
func clientCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

var redisBenchmarkRate = regexp.MustCompile(`SET: ([0-9.]+) requests per second`)

// BenchmarkThroughput compares, on one private redis-server, acknowledged
// points/s through the writeback engine with rediscache (batches of 1,000,
// 4 writers per core; the time includes folding what is pending at the
// end) with redis-benchmark's SET rate (-P 64) and with a naive client
// sending one HINCRBYFLOAT per point in pipelines of 1,000. It also
// reports the CPU per batch of this process and of redis-server, and the
// growth of the server's used_memory per point. With HG_COMMANDSTATS set
// to a path prefix, each engine run saves INFO commandstats there.
//
//	go test -run '^$' -bench Throughput -benchtime 2s ./writeback/rediscache/
func BenchmarkThroughput(b *testing.B) {
	srv := servertest.StartRedis(b)
	cl := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer cl.Close()
	ctx := context.Background()
	zipf, uniform := benchBatches(true), benchBatches(false)

	b.Run("redis-benchmark-P64-SET", func(b *testing.B) {
		if _, err := exec.LookPath("redis-benchmark"); err != nil {
			servertest.Missing(b, "redis-benchmark", "install Debian's redis-tools package")
		}
		var sum float64
		for i := 0; i < b.N; i++ {
			out, err := exec.Command("redis-benchmark", "-P", "64", "-t", "set", "-n", "1000000", "-q", "-p", strconv.Itoa(srv.Port)).CombinedOutput()
			if err != nil {
				b.Fatalf("redis-benchmark: %v\n%s", err, out)
			}
			m := redisBenchmarkRate.FindStringSubmatch(string(out))
			if m == nil {
				b.Fatalf("no SET rate in redis-benchmark's output:\n%s", out)
			}
			v, _ := strconv.ParseFloat(m[1], 64)
			sum += v
		}
		b.ReportMetric(sum/float64(b.N), "requests/s")
		_ = cl.FlushAll(ctx).Err()
	})

	engine := func(batches [][]tsstore.Point) func(b *testing.B) {
		return func(b *testing.B) {
			if err := cl.FlushAll(ctx).Err(); err != nil {
				b.Fatal(err)
			}
			if err := cl.ConfigResetStat(ctx).Err(); err != nil {
				b.Fatal(err)
			}
			before := usedMemory(b, cl)
			cache, err := rediscache.Open(ctx, cl, &rediscache.Options{Prefix: "bench"})
			if err != nil {
				b.Fatal(err)
			}
			defer cache.Close()
			store := memstore.New(nil)
			defer store.Close()
			eng, err := writeback.New(cache, store, &writeback.Options{FlushInterval: -1, MaxCacheBytes: 1 << 40})
			if err != nil {
				b.Fatal(err)
			}
			var next atomic.Int64
			b.SetParallelism(4)
			b.ResetTimer()
			start, cpu0, srv0 := time.Now(), clientCPU(), serverCPU(b, cl)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					ps := batches[next.Add(1)%int64(len(batches))]
					if err := eng.Write(ctx, ps); err != nil {
						b.Error(err)
						return
					}
				}
			})
			// The batches still pending are folded within the time.
			if err := cache.Fold(ctx); err != nil {
				b.Fatal(err)
			}
			elapsed := time.Since(start)
			cpu, srv := clientCPU()-cpu0, serverCPU(b, cl)-srv0
			b.StopTimer()
			points := float64(b.N) * benchBatch
			b.ReportMetric(points/elapsed.Seconds(), "points/s")
			st := cache.Stats()
			b.ReportMetric(float64(usedMemory(b, cl)-before)/points, "bytes/point")
			b.ReportMetric(points/float64(st.Cells), "points/cell")
			b.ReportMetric(commandMicros(b, cl)/float64(b.N), "server-cmd-us/batch")
			if os.Getenv("HG_COMMANDSTATS") != "" {
				info, _ := cl.Info(ctx, "commandstats").Result()
				_ = os.WriteFile(os.Getenv("HG_COMMANDSTATS")+"."+b.Name()[len(b.Name())-8:], []byte(fmt.Sprintf("N=%d\n%s", b.N, info)), 0o644)
			}
			// CPU per batch of this process (engine, cache, go-redis)
			// and of redis-server, and the rate two cores would give
			// if they did nothing else.
			b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "client-cpu-us/batch")
			b.ReportMetric(float64(srv.Microseconds())/float64(b.N), "server-cpu-us/batch")
			b.ReportMetric(2*points/(cpu+srv).Seconds(), "points/s-on-2-idle-cores")
			// Close without the final flush: FlushAll drops the cache.
			_ = cache.Close()
			_ = eng.Close()
		}
	}
	b.Run("engine-rediscache-zipf", engine(zipf))
	b.Run("engine-rediscache-uniform", engine(uniform))

	b.Run("naive-HINCRBYFLOAT-per-point", func(b *testing.B) {
		if err := cl.FlushAll(ctx).Err(); err != nil {
			b.Fatal(err)
		}
		var next atomic.Int64
		b.SetParallelism(4)
		b.ResetTimer()
		start := time.Now()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				ps := zipf[next.Add(1)%int64(len(zipf))]
				pipe := cl.Pipeline()
				for i := range ps {
					p := &ps[i]
					pipe.HIncrByFloat(ctx, "naive:"+p.Metric+":"+p.Labels.Get("merchant"), fmt.Sprint(p.Labels.Get("page"), ":", tsstore.CellStart(p.Timestamp, time.Minute)), p.Value)
				}
				if _, err := pipe.Exec(ctx); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)*benchBatch/time.Since(start).Seconds(), "points/s")
	})
}

// BenchmarkSealedCells reads back a sealed generation of 200,000 cells
// (2,000 series × 100 minutes) as a flush does, with SealedCells (cells)
// or SealedCellList (list), and reports the heap the result holds a cell
// (held-B/cell, after a GC) and the time a cell.
//
//	go test -run '^$' -bench SealedCells -benchtime 3x ./writeback/rediscache/
func BenchmarkSealedCells(b *testing.B) {
	cl := sharedClient(b)
	cache, err := rediscache.Open(context.Background(), cl, &rediscache.Options{Prefix: uniquePrefix(b, cl)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = cache.Close() })
	const series, minutes = 2_000, 100
	now := time.Now().Truncate(time.Minute).UnixMilli()
	for m := range minutes {
		ps := make([]tsstore.Point, 0, series)
		for s := range series {
			ls, _ := tsstore.NewLabels("merchant", "m"+strconv.Itoa(s/8), "page", "/p"+strconv.Itoa(s%8))
			ps = append(ps, tsstore.Point{Metric: "views", Labels: ls, Timestamp: now - int64(m)*60_000, Value: 1})
		}
		if err := cache.Append(context.Background(), &writeback.Batch{Raw: ps, Processed: ps, CellWidth: time.Minute}); err != nil {
			b.Fatal(err)
		}
	}
	gen, _, err := cache.Seal(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	for _, v := range []struct {
		name string
		read func() (any, int, error)
	}{
		{"cells", func() (any, int, error) {
			cells, err := cache.SealedCells(context.Background(), gen)
			return cells, len(cells), err
		}},
		{"list", func() (any, int, error) {
			l, err := cache.SealedCellList(context.Background(), gen)
			if err != nil {
				return nil, 0, err
			}
			return l, l.Len(), nil
		}},
	} {
		b.Run(v.name, func(b *testing.B) {
			var held float64
			for range b.N {
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				r, n, err := v.read()
				if err != nil || n != series*minutes {
					b.Fatalf("%d cells, %v; want %d", n, err, series*minutes)
				}
				runtime.GC()
				runtime.ReadMemStats(&after)
				held = float64(after.HeapAlloc-before.HeapAlloc) / float64(n)
				runtime.KeepAlive(r)
			}
			b.ReportMetric(held, "held-B/cell")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*series*minutes), "ns/cell")
		})
	}
}
