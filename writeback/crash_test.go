package writeback_test

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/hourglass-io/hourglass/internal/crashtest"
	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/tsstore/archive"
	"github.com/hourglass-io/hourglass/tsstore/archive/dirarchive"
	"github.com/hourglass-io/hourglass/tsstore/promtsdb"
	"github.com/hourglass-io/hourglass/writeback"
	"github.com/hourglass-io/hourglass/writeback/localcache"
)

// The crash child writes batches as fast as it can into an engine over
// localcache (fsync always), promtsdb and dirarchive in one directory,
// flushing every 50 ms, and prints "ack N" after each acknowledged batch.
// Batch N writes crashBatch points with value N+1 to the series
// merchant="r<round>".
const (
	crashEnvDir   = "HOURGLASS_CRASH_DIR"
	crashEnvRound = "HOURGLASS_CRASH_ROUND"
	crashEnvFirst = "HOURGLASS_CRASH_FIRST"
	crashEnvFsync = "HOURGLASS_CRASH_FSYNC"
	crashBatch    = 10
)

type crashSystem struct {
	cache *localcache.Cache
	store *promtsdb.Store
	arch  *dirarchive.Archive
	eng   *writeback.Engine
}

func openCrashSystem(dir string, fsync localcache.FsyncPolicy, flushEvery time.Duration) (*crashSystem, error) {
	s := &crashSystem{}
	var err error
	if s.cache, err = localcache.Open(filepath.Join(dir, "cache"), &localcache.Options{Fsync: fsync, Shards: 4}); err != nil {
		return nil, err
	}
	if s.store, err = promtsdb.Open(filepath.Join(dir, "store"), nil); err != nil {
		return nil, err
	}
	if s.arch, err = dirarchive.Open(filepath.Join(dir, "archive"), nil); err != nil {
		return nil, err
	}
	s.eng, err = writeback.New(s.cache, s.store, &writeback.Options{
		Archives:      []archive.Archive{s.arch},
		Source:        "crash",
		FlushInterval: flushEvery,
		FlushJitter:   0.01,
		MaxLate:       time.Hour,
		Logger:        slog.New(slog.DiscardHandler),
	})
	return s, err
}

func (s *crashSystem) close() error {
	err := s.eng.Close()
	for _, c := range []io.Closer{s.arch, s.store, s.cache} {
		if cerr := c.Close(); err == nil {
			err = cerr
		}
	}
	return err
}

func crashChild() {
	dir := os.Getenv(crashEnvDir)
	round := os.Getenv(crashEnvRound)
	first, _ := strconv.Atoi(os.Getenv(crashEnvFirst))
	fsync := localcache.FsyncAlways
	if os.Getenv(crashEnvFsync) == "interval" {
		fsync = localcache.FsyncInterval
	}
	s, err := openCrashSystem(dir, fsync, 50*time.Millisecond)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	labels := tsstore.Labels{{Name: "merchant", Value: "r" + round}}
	for n := first; ; n++ {
		now := time.Now().UnixMilli()
		b := make([]tsstore.Point, crashBatch)
		for i := range b {
			b[i] = tsstore.Point{Metric: "views", Labels: labels, Timestamp: now - int64(i)*7_000, Value: float64(n + 1)}
		}
		if err := s.eng.Write(ctx, b); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(3)
		}
		fmt.Printf("ack %d\n", n)
	}
}

// TestCrashRecovery kills a writing child process with SIGKILL at random
// moments, many of them during flushes, and checks after each kill that
// every acknowledged batch is there exactly once (and an unacknowledged
// one entirely or not at all), in cache plus store, and at the end in
// the archive.
func TestCrashRecovery(t *testing.T) {
	if os.Getenv(crashEnvDir) != "" {
		crashChild()
		return
	}
	rounds := 20
	if testing.Short() {
		rounds = 5
	}
	for _, fsync := range []string{"always", "interval"} {
		t.Run("fsync="+fsync, func(t *testing.T) {
			rounds := rounds
			if fsync == "interval" {
				// A killed process loses nothing the OS has; what an
				// interval fsync risks is a machine crash, which a test
				// cannot cause. Fewer rounds keep the suite short.
				rounds /= 2
			}
			dir := t.TempDir()
			next := 0
			var results []roundResult
			for r := 0; r < rounds; r++ {
				cmd := exec.Command(os.Args[0], "-test.run=^TestCrashRecovery$")
				cmd.Env = append(os.Environ(), crashEnvDir+"="+dir, crashEnvRound+"="+strconv.Itoa(r), crashEnvFirst+"="+strconv.Itoa(next), crashEnvFsync+"="+fsync)
				acked := crashtest.KillAfterAck(t, r, cmd, next-1, 50*time.Millisecond, 500*time.Millisecond)
				nacked := acked - next + 1
				results = append(results, roundResult{first: next, acked: nacked})
				// The in-flight batch may or may not have landed; the
				// next round starts after it either way.
				next = acked + 2
				checkRounds(t, dir, results, false)
			}
			checkRounds(t, dir, results, true)
		})
	}
}

// roundResult says which batches one child process acknowledged.
type roundResult struct{ first, acked int }

// checkRounds reopens the system and checks every round's series: count
// and sum equal the acknowledged batches, or those plus the one in flight.
// With archive set it also checks that the archive holds each batch's
// points exactly as often as the store.
func checkRounds(t *testing.T, dir string, results []roundResult, checkArchive bool) {
	t.Helper()
	s, err := openCrashSystem(dir, localcache.FsyncAlways, -1)
	if err != nil {
		t.Fatalf("reopen after kill: %v", err)
	}
	defer func() {
		if err := s.close(); err != nil {
			t.Errorf("close: %v", err)
		}
	}()
	now := time.Now().UnixMilli()
	res, err := s.eng.Query(ctx, tsstore.Query{Metric: "views", From: now - 3*time.Hour.Milliseconds(), To: now + time.Minute.Milliseconds(), Step: 4 * time.Hour, GroupBy: []string{"merchant"}})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]tsstore.Agg{}
	for _, se := range res.Series {
		for _, b := range se.Buckets {
			a := got[se.Labels.Get("merchant")]
			a.Merge(b.Agg)
			got[se.Labels.Get("merchant")] = a
		}
	}
	archived := map[string]tsstore.Agg{}
	if checkArchive {
		if _, err := s.eng.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		err := s.arch.Scan(ctx, archive.ScanRequest{From: 0, To: tsstore.MaxTimestamp - 1, Metric: "views"}, func(p tsstore.Point) error {
			a := archived[p.Labels.Get("merchant")]
			a.Add(p.Value)
			archived[p.Labels.Get("merchant")] = a
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for r, rr := range results {
		m := "r" + strconv.Itoa(r)
		a := got[m]
		want := func(batches int) (uint64, float64) {
			var sum float64
			for n := rr.first; n < rr.first+batches; n++ {
				sum += float64(crashBatch * (n + 1))
			}
			return uint64(crashBatch * batches), sum
		}
		c0, s0 := want(rr.acked)
		c1, s1 := want(rr.acked + 1)
		if !(a.Count == c0 && a.Sum == s0 || a.Count == c1 && a.Sum == s1) {
			t.Errorf("round %d: %d batches acknowledged from %d; the engine has count %d sum %v, want %d/%v (or %d/%v with the batch in flight)",
				r, rr.acked, rr.first, a.Count, a.Sum, c0, s0, c1, s1)
		}
		if checkArchive && archived[m] != a {
			t.Errorf("round %d: the archive holds %+v, the store %+v", r, archived[m], a)
		}
	}
}
