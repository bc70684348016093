package promremote_test

import (
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/hourglass-io/hourglass/internal/crashtest"
	"github.com/hourglass-io/hourglass/internal/servertest"
	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/tsstore/promremote"
	"github.com/hourglass-io/hourglass/writeback"
	"github.com/hourglass-io/hourglass/writeback/localcache"
)

// The crash child writes batches as fast as it can into an engine over
// localcache (fsync always) and a store on VictoriaMetrics, flushing every
// 50 ms, and prints "ack N" after each acknowledged batch. Batch N writes
// crashBatch points with value N+1 to the series merchant="r<round>".
const (
	crashEnvDir   = "HOURGLASS_PROMREMOTE_CRASH_DIR"
	crashEnvNS    = "HOURGLASS_PROMREMOTE_CRASH_NS"
	crashEnvRound = "HOURGLASS_PROMREMOTE_CRASH_ROUND"
	crashEnvFirst = "HOURGLASS_PROMREMOTE_CRASH_FIRST"
	crashBatch    = 10
)

type crashSystem struct {
	cache *localcache.Cache
	store *promremote.Store
	eng   *writeback.Engine
}

func openCrashSystem(vmURL, dir, ns string, flushEvery time.Duration) (*crashSystem, error) {
	s := &crashSystem{}
	var err error
	if s.cache, err = localcache.Open(filepath.Join(dir, "cache"), &localcache.Options{Fsync: localcache.FsyncAlways}); err != nil {
		return nil, err
	}
	opts := &promremote.Options{ExternalLabels: tsstore.Labels{{Name: "hgtest", Value: ns}}}
	if s.store, err = promremote.Open(ctx, vmURL+"/api/v1/write", vmURL+"/", opts); err != nil {
		return nil, err
	}
	s.eng, err = writeback.New(s.cache, s.store, &writeback.Options{
		FlushInterval: flushEvery,
		FlushJitter:   0.01,
		MaxLate:       time.Hour,
		Logger:        slog.New(slog.DiscardHandler),
	})
	return s, err
}

func (s *crashSystem) close() error {
	err := s.eng.Close()
	if cerr := s.store.Close(); err == nil {
		err = cerr
	}
	if cerr := s.cache.Close(); err == nil {
		err = cerr
	}
	return err
}

func crashChild() {
	first, _ := strconv.Atoi(os.Getenv(crashEnvFirst))
	s, err := openCrashSystem(os.Getenv(servertest.EnvVictoriaMetrics), os.Getenv(crashEnvDir), os.Getenv(crashEnvNS), 50*time.Millisecond)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	labels := tsstore.Labels{{Name: "merchant", Value: "r" + os.Getenv(crashEnvRound)}}
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

// TestCrashRecovery kills a child process writing through the engine into
// VictoriaMetrics with SIGKILL at random moments, many of them during
// flushes, and checks after each kill that every acknowledged batch is
// there exactly once (and an unacknowledged one entirely or not at all),
// in cache plus store; at the end, after a flush, in the store alone.
// A flush replayed after a kill rewrites cells the store may hold
// already: the conflict check makes that a no-op.
func TestCrashRecovery(t *testing.T) {
	if os.Getenv(crashEnvDir) != "" {
		crashChild()
		return
	}
	vmURL := servertest.VictoriaMetricsURL(t)
	rounds := 6
	if testing.Short() {
		rounds = 3
	}
	dir := t.TempDir()
	ns := namespace(t)[0].Value
	next := 0
	var results []roundResult
	for r := 0; r < rounds; r++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashRecovery$")
		cmd.Env = append(os.Environ(), crashEnvDir+"="+dir, crashEnvNS+"="+ns, crashEnvRound+"="+strconv.Itoa(r), crashEnvFirst+"="+strconv.Itoa(next), servertest.EnvVictoriaMetrics+"="+vmURL)
		acked := crashtest.KillAfterAck(t, r, cmd, next-1, 100*time.Millisecond, 600*time.Millisecond)
		results = append(results, roundResult{first: next, acked: acked - next + 1})
		// The in-flight batch may or may not have landed; the next round
		// starts after it either way.
		next = acked + 2
		checkRounds(t, vmURL, dir, ns, results, r == rounds-1)
	}
}

// roundResult says which batches one child process acknowledged.
type roundResult struct{ first, acked int }

// checkRounds reopens the system and checks every round's series: count
// and sum equal the acknowledged batches, or those plus the one in flight.
// With final set it flushes and checks the store alone too.
func checkRounds(t *testing.T, vmURL, dir, ns string, results []roundResult, final bool) {
	t.Helper()
	s, err := openCrashSystem(vmURL, dir, ns, -1)
	if err != nil {
		t.Fatalf("reopen after kill: %v", err)
	}
	defer func() {
		if err := s.close(); err != nil {
			t.Errorf("close: %v", err)
		}
	}()
	now := time.Now().UnixMilli()
	q := tsstore.Query{Metric: "views", From: now - 3*time.Hour.Milliseconds(), To: now + time.Minute.Milliseconds(), Step: 4 * time.Hour, GroupBy: []string{"merchant"}}
	sum := func(what string, query func() (*tsstore.Result, error)) map[string]tsstore.Agg {
		res, err := query()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		got := map[string]tsstore.Agg{}
		for _, se := range res.Series {
			for _, b := range se.Buckets {
				a := got[se.Labels.Get("merchant")]
				a.Merge(b.Agg)
				got[se.Labels.Get("merchant")] = a
			}
		}
		return got
	}
	got := sum("engine query", func() (*tsstore.Result, error) { return s.eng.Query(ctx, q) })
	var stored map[string]tsstore.Agg
	if final {
		if _, err := s.eng.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		stored = sum("store query", func() (*tsstore.Result, error) { return s.store.Query(ctx, q) })
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
		if final && stored[m] != a {
			t.Errorf("round %d: after the final flush the store holds %+v, the engine showed %+v", r, stored[m], a)
		}
	}
}
