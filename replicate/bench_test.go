package replicate_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hourglass-io/hourglass/internal/cputime"
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

// timedStore measures the time spent in the Writes of the store it wraps.
type timedStore struct {
	tsstore.Store
	ns atomic.Int64
}

func (t *timedStore) Write(ctx context.Context, cells []tsstore.Cell) error {
	t0 := time.Now()
	err := t.Store.Write(ctx, cells)
	t.ns.Add(int64(time.Since(t0)))
	return err
}

// heldStore makes Writes wait while it is held: a standby whose work runs
// elsewhere while the benchmark times the writer.
type heldStore struct {
	tsstore.Store
	mu sync.RWMutex
}

func (h *heldStore) hold()    { h.mu.Lock() }
func (h *heldStore) release() { h.mu.Unlock() }

func (h *heldStore) Write(ctx context.Context, cells []tsstore.Cell) error {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.Store.Write(ctx, cells)
}

// benchBlock is the number of writes of one block of BenchmarkWrite.
const benchBlock = 100

// BenchmarkWrite compares the write throughput of a replicate.Store with a
// promtsdb primary and a promtsdb standby (both fenced) with a bare
// promtsdb store, on the same 1,000-cell batches in the same run: the
// writes alternate in blocks of 100 between the bare store and the
// replicated one, so that the load of the shared machine hits both alike.
// After each replicated block the standby catches up before the next bare
// block starts (so its work never runs during the bare writes), and at the
// end the standby must hold every cell.
//
// Metrics: cells/s and ratio-to-bare count acknowledged writes (at
// AckPrimary the standby is written by its applier, off the ack path);
// ratio-drained also counts the time until the standby has applied every
// block (the sustained rate of the pair). primary-µs/op is the time of the
// primary's Write inside a replicated write, overhead-µs/op the rest of the
// replicated write (registration, hint encoding and appends, ack
// bookkeeping), bare-µs/op a bare write. cpu-µs/op is the process's CPU
// time per write of the replicated blocks, the standby's catch-up
// included, bare-cpu-µs/op the same for the bare blocks. standby-lag is the
// largest number of acknowledged writes the standby had not applied at the
// end of a block.
//
//	go test -run '^$' -bench 'Write$' -benchtime 2000x ./replicate/
//
// The sub-benchmark standby=elsewhere simulates a standby on another
// machine, as deployed: the standby's writes wait while a replicated block
// is timed and run (untimed) between blocks, so its CPU does not compete
// with the writer on this machine; the hints queue meanwhile, as for a
// remote standby that is slower than the primary. It measures what
// replication costs the ack path itself (AckPrimary only: at higher
// levels the ack waits for the standby).
func BenchmarkWrite(b *testing.B) {
	ctx := context.Background()
	type setup struct {
		ack       replicate.Ack
		elsewhere bool
	}
	for _, su := range []setup{{replicate.AckPrimary, false}, {replicate.AckPrimaryPlus(1), false}, {replicate.AckPrimary, true}} {
		name := "ack=" + su.ack.String()
		if su.elsewhere {
			name += "/standby=elsewhere"
		}
		ack := su.ack
		b.Run(name, func(b *testing.B) {
			bare := benchProm(b, "bare")
			tp := &timedStore{Store: benchProm(b, "p")}
			fp, err := replicate.NewFenced(tp, filepath.Join(b.TempDir(), "p.epoch"))
			if err != nil {
				b.Fatal(err)
			}
			sb := benchProm(b, "s")
			held := &heldStore{Store: sb}
			var standby tsstore.Store = sb
			if su.elsewhere {
				standby = held
			}
			fs, err := replicate.NewFenced(standby, filepath.Join(b.TempDir(), "s.epoch"))
			if err != nil {
				b.Fatal(err)
			}
			s, err := replicate.New(fp, []tsstore.Store{fs}, &replicate.Options{Dir: b.TempDir(), Ack: ack, Logger: quiet})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			batches := benchBatches(b.N)
			b.ResetTimer()
			var bareT, replT, drainT, bareCPU, replCPU time.Duration
			lag := uint64(0)
			for lo := 0; lo < b.N; lo += benchBlock {
				hi := min(lo+benchBlock, b.N)
				c0, t0 := cputime.Used(), time.Now()
				for i := lo; i < hi; i++ {
					if err := bare.Write(ctx, batches[i]); err != nil {
						b.Fatal(err)
					}
				}
				c1, t1 := cputime.Used(), time.Now()
				if su.elsewhere {
					held.hold()
				}
				for i := lo; i < hi; i++ {
					if err := s.Write(ctx, batches[i]); err != nil {
						b.Fatal(err)
					}
				}
				t2 := time.Now()
				st := s.Stats()
				lag = max(lag, st.LastAcked-st.Replicas[1].Applied)
				if su.elsewhere {
					held.release()
				}
				for !caughtUp(s, "r1") {
					time.Sleep(100 * time.Microsecond)
				}
				bareT += t1.Sub(t0)
				replT += t2.Sub(t1)
				drainT += time.Since(t2)
				bareCPU += c1 - c0
				replCPU += cputime.Used() - c1
			}
			b.StopTimer()
			n := float64(b.N)
			rate, bareRate := n*1000/replT.Seconds(), n*1000/bareT.Seconds()
			b.ReportMetric(rate, "cells/s")
			b.ReportMetric(rate/bareRate, "ratio-to-bare")
			b.ReportMetric(bareT.Seconds()/(replT+drainT).Seconds(), "ratio-drained")
			b.ReportMetric(float64(bareT.Microseconds())/n, "bare-µs/op")
			prim := time.Duration(tp.ns.Load())
			b.ReportMetric(float64(prim.Microseconds())/n, "primary-µs/op")
			b.ReportMetric(float64((replT-prim).Microseconds())/n, "overhead-µs/op")
			b.ReportMetric(float64(replCPU.Microseconds())/n, "cpu-µs/op")
			b.ReportMetric(float64(bareCPU.Microseconds())/n, "bare-cpu-µs/op")
			b.ReportMetric(float64(lag), "standby-lag")
			checkAll(b, sb, batches)
		})
	}
}

// checkAll checks that st holds exactly the cells of batches (by count and
// by the totals of every component; the fault tests compare cell by cell).
func checkAll(b *testing.B, st tsstore.Store, batches [][]tsstore.Cell) {
	var want, got tsstore.Agg
	n := 0
	for _, cs := range batches {
		for _, c := range cs {
			want.Count += c.Count
			want.Sum += c.Sum
			want.Min += c.Min
			want.Max += c.Max
			n++
		}
	}
	cells, err := st.Cells(context.Background(), tsstore.Selector{Metric: "orders", From: 0, To: tsstore.MaxTimestamp})
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range cells {
		got.Count += c.Count
		got.Sum += c.Sum
		got.Min += c.Min
		got.Max += c.Max
	}
	if len(cells) != n || got != want {
		b.Fatalf("the standby holds %d cells with totals %+v, want %d with %+v", len(cells), got, n, want)
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
