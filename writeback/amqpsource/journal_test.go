package amqpsource

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/tsstore/memstore"
	"github.com/hourglass-io/hourglass/writeback"
	"github.com/hourglass-io/hourglass/writeback/localcache"
)

// TestSettleAfterCrash builds, by hand, the two states a crash can leave
// between the journal's fsynced "P" and its "A": the write landed (crash
// after the engine's acknowledgement) or it did not (crash before the
// write). Open must settle the first as applied (its redelivery is a
// duplicate) and the second as not applied (its redelivery is written),
// also with a torn record at the end of the journal.
func TestSettleAfterCrash(t *testing.T) {
	ctx := context.Background()
	cache, err := localcache.Open(filepath.Join(t.TempDir(), "cache"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cache.Close()
	eng, err := writeback.New(cache, memstore.New(nil), &writeback.Options{FlushInterval: -1, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	dir := t.TempDir()
	opts := Options{Name: "settle", Marker: DefaultMarker, ReconnectBackoff: time.Hour, Logger: slog.New(slog.DiscardHandler)}
	mk := &Consumer{opts: opts}

	j, err := openJournal(dir, 100)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UnixMilli()
	point := tsstore.Point{Metric: "views", Labels: tsstore.Labels{{Name: "merchant", Value: "m"}}, Timestamp: now, Value: 1}
	// Slot 0: two writes applied normally, then a third that lands in the
	// engine without its "A" (crash right after the acknowledgement).
	for i, id := range []string{"a1", "a2", "landed"} {
		res, seq, _, err := j.begin(id, 0, now)
		if err != nil || res != beginNew || seq != uint64(i+1) {
			t.Fatalf("begin %s: %v %d %v", id, res, seq, err)
		}
		if err := eng.Write(ctx, []tsstore.Point{point, mk.marker(0, seq, now)}); err != nil {
			t.Fatal(err)
		}
		if id != "landed" {
			if err := j.applied(id); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Slot 1: one applied write, then one whose "P" is durable but whose
	// write never happened (crash before it).
	for _, id := range []string{"b1", "lost"} {
		_, seq, _, err := j.begin(id, 1, now)
		if err != nil {
			t.Fatal(err)
		}
		if id == "lost" {
			continue
		}
		if err := eng.Write(ctx, []tsstore.Point{point, mk.marker(1, seq, now)}); err != nil {
			t.Fatal(err)
		}
		if err := j.applied(id); err != nil {
			t.Fatal(err)
		}
	}
	if err := j.close(); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(dir, segName(1)), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(`P 2 1 12 "to`); err != nil { // torn
		t.Fatal(err)
	}
	f.Close()

	c, err := Open(ctx, "amqp://guest:guest@127.0.0.1:1/", eng, dir, &opts)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for id, want := range map[string]beginResult{"a1": beginDup, "landed": beginDup, "b1": beginDup, "lost": beginNew, "torn": beginNew} {
		res, seq, _, err := c.j.begin(id, 1, now)
		if err != nil || res != want {
			t.Errorf("after the restart, %s is %v (%v), want %v", id, res, err, want)
		}
		if res == beginNew {
			if seq <= 2 {
				t.Errorf("slot 1 restarted its numbering: seq %d", seq)
			}
			_ = c.j.aborted(id)
		}
	}
}

// TestJournalRotation checks that rotation keeps between maxIDs and
// 2*maxIDs recent ids, carries pending writes and slot numbers over, and
// that all of it survives a reopen.
func TestJournalRotation(t *testing.T) {
	dir := t.TempDir()
	j, err := openJournal(dir, 10)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := j.begin("pending", 3, 1); err != nil {
		t.Fatal(err)
	}
	for i := range 45 {
		id := fmt.Sprint("id", i)
		if _, _, _, err := j.begin(id, i%2, 1); err != nil {
			t.Fatal(err)
		}
		if err := j.applied(id); err != nil {
			t.Fatal(err)
		}
	}
	check := func(j *journal, when string) {
		t.Helper()
		n := j.size()
		if n < 10 || n > 2*10+1 {
			t.Errorf("%s: %d ids remembered, want 10..21", when, n)
		}
		if res, _, _, _ := j.begin("id44", 0, 1); res != beginDup {
			t.Errorf("%s: the latest id is forgotten", when)
		}
		if _, ok := j.lookup("pending"); !ok && when == "reopened" {
			t.Errorf("%s: the pending write was dropped by rotation", when)
		}
		if res, _, _, _ := j.begin("id0", 0, 1); res != beginNew {
			t.Errorf("%s: the oldest id is still remembered", when)
		}
		_ = j.aborted("id0")
	}
	check(j, "open")
	slot0 := j.slots[0]
	if err := j.close(); err != nil {
		t.Fatal(err)
	}
	segs, _ := filepath.Glob(filepath.Join(dir, "journal-*.log"))
	if len(segs) > 3 {
		t.Errorf("%d segments on disk, want at most 3", len(segs))
	}
	j2, err := openJournal(dir, 10)
	if err != nil {
		t.Fatal(err)
	}
	defer j2.close()
	if j2.slots[0] < slot0 {
		t.Errorf("slot 0's last seq went back from %d to %d", slot0, j2.slots[0])
	}
	check(j2, "reopened")
}
