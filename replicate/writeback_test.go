package replicate_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/hourglass-io/hourglass/replicate"
	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/tsstore/memstore"
	"github.com/hourglass-io/hourglass/writeback"
	"github.com/hourglass-io/hourglass/writeback/localcache"
)

// The write-back engine commits a flush through a replicate.Store only when
// its ack level is met: at AckAll a down standby fails the flush and the
// generation stays in the cache (and is flushed once the standby is back);
// at AckPrimary the flush commits and the standby gets a hint.
func TestWritebackFlush(t *testing.T) {
	for _, tc := range []struct {
		ack        replicate.Ack
		wantCommit bool
	}{{replicate.AckAll, false}, {replicate.AckPrimary, true}} {
		t.Run(tc.ack.String(), func(t *testing.T) {
			ctx := context.Background()
			p, sb := newReplica(t, promBackend, "p"), newReplica(t, promBackend, "s")
			o := testOptions(t, tc.ack)
			o.AckTimeout = time.Second
			s := openStore(t, p, []tsstore.Store{sb}, o)
			cache, err := localcache.Open(filepath.Join(t.TempDir(), "cache"), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer cache.Close()
			eng, err := writeback.New(cache, s, &writeback.Options{FlushInterval: -1, Logger: quiet, Source: "test"})
			if err != nil {
				t.Fatal(err)
			}
			defer eng.Close()

			now := time.Now().UnixMilli()
			var points []tsstore.Point
			for i := range 50 {
				ls, _ := tsstore.NewLabels("merchant", "m"+string(rune('a'+i%5)))
				points = append(points, tsstore.Point{Metric: "orders", Labels: ls, Timestamp: now - int64(i)*1000, Value: float64(i)})
			}
			if err := eng.Write(ctx, points); err != nil {
				t.Fatal(err)
			}
			sb.down.Store(true)
			check(t, s)
			_, err = eng.Flush(ctx)
			sealed := cache.Stats().Sealed
			if tc.wantCommit {
				if err != nil || sealed != 0 {
					t.Fatalf("flush at %s with a standby down: err %v, %d sealed generations left; want committed", tc.ack, err, sealed)
				}
				if st := replicaStats(s, "r1"); st.HintRecords == 0 {
					t.Fatalf("flush committed without a hint for the down standby: %+v", st)
				}
			} else if err == nil || sealed == 0 {
				t.Fatalf("flush at %s with a standby down: err %v, %d sealed generations; want a failed flush keeping its generation", tc.ack, err, sealed)
			}

			// The standby returns: the flush (or the hints) complete and
			// both replicas hold exactly what the engine answers.
			sb.down.Store(false)
			check(t, s)
			if _, err := eng.Flush(ctx); err != nil {
				t.Fatalf("flush after the standby came back: %v", err)
			}
			if n := cache.Stats().Sealed; n != 0 {
				t.Fatalf("%d sealed generations left after a good flush", n)
			}
			eventually(t, "standby catches up", func() bool { return caughtUp(s, "r1") })
			oracle := memstore.New(nil)
			cells, err := s.Cells(ctx, tsstore.Selector{Metric: "orders", From: 0, To: tsstore.MaxTimestamp})
			if err != nil || len(cells) == 0 {
				t.Fatalf("cells through replicate: %d, %v", len(cells), err)
			}
			if err := oracle.Write(ctx, cells); err != nil {
				t.Fatal(err)
			}
			var total uint64
			for _, c := range cells {
				total += c.Count
			}
			if total != uint64(len(points)) {
				t.Fatalf("replicated cells count %d points, want %d", total, len(points))
			}
			sameCells(t, "primary", p.inner, oracle, "orders")
			sameCells(t, "standby", sb.inner, oracle, "orders")
		})
	}
}
