package amqpsource_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/hourglass-io/hourglass/internal/servertest"
	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/tsstore/memstore"
	"github.com/hourglass-io/hourglass/writeback"
	"github.com/hourglass-io/hourglass/writeback/amqpsource"
	"github.com/hourglass-io/hourglass/writeback/localcache"
)

func TestMain(m *testing.M) {
	if os.Getenv(crashEnvDir) != "" {
		os.Exit(crashChild())
	}
	goleak.VerifyTestMain(m)
}

var ctx = context.Background()

var quiet = slog.New(slog.DiscardHandler)

// queues returns unique queue names for the test (write, read, dead
// letter) and deletes them when it ends.
func queues(t testing.TB, url string) amqpsource.Options {
	t.Helper()
	// ".w.dead" is the dead-letter queue of TestCrashMidStream's child
	// (its write queue plus ".dead").
	base := servertest.AMQPQueues(t, url, regexp.MustCompile(`[^a-zA-Z0-9]+`).ReplaceAllString(t.Name(), "-"), ".w", ".r", ".dead", ".w.dead")
	o := amqpsource.Options{
		Name:            strings.ReplaceAll(base, ".", "_"),
		WriteQueue:      base + ".w",
		ReadQueue:       base + ".r",
		DeadLetterQueue: base + ".dead",
		Logger:          quiet,
	}
	return o
}

// newEngine returns an engine over a localcache in dir (fsync always)
// and the given store.
func newEngine(t testing.TB, dir string, store tsstore.Store) *writeback.Engine {
	t.Helper()
	return newEngineWith(t, dir, store, 0, 0)
}

// newEngineWith is newEngine with Options.FlushWriters.
func newEngineWith(t testing.TB, dir string, store tsstore.Store, flushWriters, flushWaiters int) *writeback.Engine {
	t.Helper()
	cache, err := localcache.Open(dir, &localcache.Options{Fsync: localcache.FsyncAlways, Shards: 4})
	if err != nil {
		t.Fatal(err)
	}
	eng, err := writeback.New(cache, store, &writeback.Options{FlushInterval: -1, MaxLate: 24 * time.Hour, Source: "test", Logger: quiet, FlushWriters: flushWriters, FlushWaiters: flushWaiters, FlushStall: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := eng.Close(); err != nil {
			t.Errorf("engine close: %v", err)
		}
		if err := cache.Close(); err != nil {
			t.Errorf("cache close: %v", err)
		}
	})
	return eng
}

func memEngine(t testing.TB) *writeback.Engine {
	return newEngine(t, filepath.Join(t.TempDir(), "cache"), memstore.New(nil))
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// batchPoints is the deterministic content of batch n: size points of
// metric views over 7 merchants, with whole values (sums are exact).
func batchPoints(n, size int, base int64) []tsstore.Point {
	ps := make([]tsstore.Point, size)
	for i := range ps {
		ps[i] = tsstore.Point{
			Metric:    "views",
			Labels:    tsstore.Labels{{Name: "merchant", Value: "m" + string(rune('a'+(n+i)%7))}},
			Timestamp: base - int64((n*size+i)%3600)*1000,
			Value:     float64(n*size + i + 1),
		}
	}
	return ps
}

// allViews queries views per series and minute over the last two hours.
func allViews(t testing.TB, q interface {
	Query(context.Context, tsstore.Query) (*tsstore.Result, error)
}, base int64) *tsstore.Result {
	t.Helper()
	from := tsstore.CellStart(base, time.Minute) - 2*time.Hour.Milliseconds()
	res, err := q.Query(ctx, tsstore.Query{Metric: "views", From: from, To: from + 3*time.Hour.Milliseconds(), Step: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// oracle writes the batches into an engine over memstore and returns its
// answer to allViews.
func oracle(t testing.TB, batches [][]tsstore.Point, base int64) *tsstore.Result {
	t.Helper()
	eng := memEngine(t)
	for _, b := range batches {
		if err := eng.Write(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	return allViews(t, eng, base)
}
