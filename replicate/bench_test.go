package replicate_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hourglass-io/hourglass/replicate"
	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/tsstore/promtsdb"
)

func benchProm(b *testing.B, name string) *promtsdb.Store {
	s, err := promtsdb.Open(filepath.Join(b.TempDir(), name), nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	return s
}

func benchFenced(b *testing.B, name string) *replicate.Fenced {
	f, err := replicate.NewFenced(benchProm(b, name), filepath.Join(b.TempDir(), name+".epoch"))
	if err != nil {
		b.Fatal(err)
	}
	return f
}

// benchBatch is batch i of the write benchmark: 1,000 cells (1,000
// merchants) of minute i.
func benchBatches(n int) [][]tsstore.Cell {
	labels := make([]tsstore.Labels, 1000)
	for k := range labels {
		labels[k], _ = tsstore.NewLabels("merchant", fmt.Sprintf("m%04d", k), "page", "/checkout")
	}
	out := make([][]tsstore.Cell, n)
	for i := range out {
		cells := make([]tsstore.Cell, len(labels))
		for k, ls := range labels {
			v := float64(i + k)
			cells[k] = tsstore.Cell{Metric: "orders", Labels: ls, Start: base + int64(i)*60_000, Agg: tsstore.Agg{Count: 3, Sum: 3*v + 3, Min: v, Max: v + 2}}
		}
		out[i] = cells
	}
	return out
}

var bareCellsPerSec float64

// cpuTime returns the CPU time (user + system) of the process so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkWrite compares the write throughput of a replicate.Store with a
// promtsdb primary and a promtsdb standby (both fenced) with the bare
// primary, on the same 1,000-cell batches: "bare" first, then the ack
// levels, each reporting cells/s and its ratio to bare. For AckPrimary the
// standby is written by its applier off the ack path; standby-lag is the
// number of acknowledged writes it had not applied when the timed loop
// ended. cpu-µs/op is the process's CPU time per write, the standby's
// catch-up included: with both TSDBs in one process the standby costs
// about as much CPU as the primary, so on two cores shared with other work
// the ratio is bounded by CPU, not by the ack path.
//
//	go test -run '^$' -bench 'Write$' -benchtime 2000x ./replicate/
func BenchmarkWrite(b *testing.B) {
	ctx := context.Background()
	b.Run("bare", func(b *testing.B) {
		s := benchProm(b, "bare")
		batches := benchBatches(b.N)
		b.ResetTimer()
		cpu := cpuTime()
		for i := range b.N {
			if err := s.Write(ctx, batches[i]); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		b.ReportMetric(float64((cpuTime()-cpu).Microseconds())/float64(b.N), "cpu-µs/op")
		bareCellsPerSec = float64(b.N*1000) / b.Elapsed().Seconds()
		b.ReportMetric(bareCellsPerSec, "cells/s")
	})
	for _, ack := range []replicate.Ack{replicate.AckPrimary, replicate.AckPrimaryPlus(1)} {
		b.Run("ack="+ack.String(), func(b *testing.B) {
			s, err := replicate.New(benchFenced(b, "p"), []tsstore.Store{benchFenced(b, "s")},
				&replicate.Options{Dir: b.TempDir(), Ack: ack, Logger: quiet})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			batches := benchBatches(b.N)
			b.ResetTimer()
			cpu := cpuTime()
			for i := range b.N {
				if err := s.Write(ctx, batches[i]); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			rate := float64(b.N*1000) / b.Elapsed().Seconds()
			lag := s.Stats()
			// The CPU of the standby's catch-up belongs to these writes.
			eventually(b, "standby catches up", func() bool { return caughtUp(s, "r1") })
			b.ReportMetric(float64((cpuTime()-cpu).Microseconds())/float64(b.N), "cpu-µs/op")
			b.ReportMetric(rate, "cells/s")
			if bareCellsPerSec > 0 {
				b.ReportMetric(rate/bareCellsPerSec, "ratio-to-bare")
			}
			b.ReportMetric(float64(lag.LastAcked-lag.Replicas[1].Applied), "standby-lag")
		})
	}
}

// BenchmarkFailover measures RTO and RPO per ack level with three promtsdb
// replicas, a 50 ms probe interval and Fall 2: a writer writes 100-cell
// batches without pause; the primary is killed (every call fails) after
// 200 ms. rto-ms is the time from the kill to the first acknowledged write
// after it (detection, promotion, fencing). lost-acked counts acknowledged
// writes missing from the new primary once the standbys have caught up
// (the Store survives the primary). at-risk-acked counts the acknowledged
// writes that no standby had applied at the kill: they survived in the
// hint logs only, so they are the loss if the Store's host dies with the
// primary (same machine) before its hints reach a standby.
//
//	go test -run '^$' -bench Failover -benchtime 5x ./replicate/
func BenchmarkFailover(b *testing.B) {
	// AckAll is left out: with a replica dead, no write can be
	// acknowledged until it returns (its RTO is the replica's repair).
	for _, ack := range []replicate.Ack{replicate.AckPrimary, replicate.AckPrimaryPlus(1)} {
		b.Run("ack="+ack.String(), func(b *testing.B) {
			var rto time.Duration
			var lost, atRisk int
			for range b.N {
				r, l, a := failoverOnce(b, ack)
				rto += r
				lost += l
				atRisk += a
			}
			b.ReportMetric(float64(rto.Milliseconds())/float64(b.N), "rto-ms")
			b.ReportMetric(float64(lost)/float64(b.N), "lost-acked")
			b.ReportMetric(float64(atRisk)/float64(b.N), "at-risk-acked")
		})
	}
}

func failoverOnce(b *testing.B, ack replicate.Ack) (rto time.Duration, lost, atRisk int) {
	ctx := context.Background()
	fb := func(tb testing.TB, name string) tsstore.Store { return benchProm(b, name) }
	p, s1, s2 := newReplica(b, fb, "p"), newReplica(b, fb, "s1"), newReplica(b, fb, "s2")
	s, err := replicate.New(p, []tsstore.Store{s1, s2}, &replicate.Options{Dir: b.TempDir(), Ack: ack, Logger: quiet,
		ProbeInterval: 50 * time.Millisecond, Fall: 2, Rise: 1, RetryBackoff: 20 * time.Millisecond})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()

	var (
		mu      sync.Mutex
		acked   [][]tsstore.Cell
		killed  atomic.Int64 // unix ns of the kill
		firstOK atomic.Int64 // unix ns of the first ack after it
		stop    atomic.Bool
		wg      sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; !stop.Load(); i++ {
			cells := batch(b, i, 50, "orders", "revenue")
			start := time.Now().UnixNano()
			if err := s.Write(ctx, cells); err != nil {
				time.Sleep(time.Millisecond)
				i-- // retry the same batch, as the write-back engine does
				continue
			}
			if k := killed.Load(); k != 0 && start > k {
				firstOK.CompareAndSwap(0, time.Now().UnixNano())
			}
			mu.Lock()
			acked = append(acked, cells)
			mu.Unlock()
		}
	}()
	time.Sleep(200 * time.Millisecond)
	st := s.Stats()
	p.down.Store(true)
	killed.Store(time.Now().UnixNano())
	maxApplied := uint64(0)
	for _, r := range st.Replicas[1:] {
		maxApplied = max(maxApplied, r.Applied)
	}
	if st.LastAcked > maxApplied {
		atRisk = int(st.LastAcked - maxApplied)
	}
	for firstOK.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	stop.Store(true)
	wg.Wait()
	rto = time.Duration(firstOK.Load() - killed.Load())

	newPrimary := s.Stats().Primary
	var np tsstore.Store
	switch newPrimary {
	case "r1":
		np = s1.inner
	case "r2":
		np = s2.inner
	default:
		b.Fatalf("no promotion: %+v", s.Stats())
	}
	eventually(b, "new primary applies every ack", func() bool { return caughtUp(s, newPrimary) })
	have := map[tsstore.CellID]tsstore.Agg{}
	for _, m := range []string{"orders", "revenue"} {
		cs, err := np.Cells(ctx, tsstore.Selector{Metric: m, From: 0, To: tsstore.MaxTimestamp})
		if err != nil {
			b.Fatal(err)
		}
		for _, c := range cs {
			have[c.ID()] = c.Agg
		}
	}
	for _, cells := range acked {
		for _, c := range cells {
			if have[c.ID()] != c.Agg {
				lost++
				break
			}
		}
	}
	return rto, lost, atRisk
}
