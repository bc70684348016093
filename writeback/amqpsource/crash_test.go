package amqpsource_test

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/hourglass-io/hourglass/internal/crashtest"
	"github.com/hourglass-io/hourglass/internal/servertest"
	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/tsstore/promtsdb"
	"github.com/hourglass-io/hourglass/writeback"
	"github.com/hourglass-io/hourglass/writeback/amqpsource"
	"github.com/hourglass-io/hourglass/writeback/localcache"
)

// The crash child consumes the write queue into an engine over localcache
// (fsync always) and promtsdb in one directory, flushing every 200 ms,
// prints "ready" once consuming, and on SIGTERM closes everything and
// exits; the test kills it with SIGKILL at random moments.
const (
	crashEnvDir   = "HOURGLASS_AMQP_CRASH_DIR"
	crashEnvURL   = "HOURGLASS_AMQP_CRASH_URL"
	crashEnvQueue = "HOURGLASS_AMQP_CRASH_QUEUE"
	crashEnvName  = "HOURGLASS_AMQP_CRASH_NAME"
)

type crashSystem struct {
	cache *localcache.Cache
	store *promtsdb.Store
	eng   *writeback.Engine
}

func openCrashSystem(dir string, flushEvery time.Duration) (*crashSystem, error) {
	s := &crashSystem{}
	var err error
	if s.cache, err = localcache.Open(filepath.Join(dir, "cache"), &localcache.Options{Fsync: localcache.FsyncAlways, Shards: 4}); err != nil {
		return nil, err
	}
	if s.store, err = promtsdb.Open(filepath.Join(dir, "store"), nil); err != nil {
		return nil, err
	}
	s.eng, err = writeback.New(s.cache, s.store, &writeback.Options{
		Source: "crash", FlushInterval: flushEvery, FlushJitter: 0.01, MaxLate: 24 * time.Hour, Logger: quiet,
	})
	return s, err
}

func (s *crashSystem) close() error {
	err := s.eng.Close()
	if e := s.store.Close(); err == nil {
		err = e
	}
	if e := s.cache.Close(); err == nil {
		err = e
	}
	return err
}

func crashChild() int {
	dir := os.Getenv(crashEnvDir)
	fail := func(err error) int {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	s, err := openCrashSystem(dir, 200*time.Millisecond)
	if err != nil {
		return fail(err)
	}
	q := os.Getenv(crashEnvQueue)
	c, err := amqpsource.Open(ctx, os.Getenv(crashEnvURL), s.eng, filepath.Join(dir, "journal"), &amqpsource.Options{
		Name: os.Getenv(crashEnvName), WriteQueue: q, DeadLetterQueue: q + ".dead", DisableReads: true,
		WritePrefetch: 8, WriteConcurrency: 3, Logger: quiet,
	})
	if err != nil {
		return fail(err)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM)
	for !c.Stats().Connected {
		time.Sleep(5 * time.Millisecond)
	}
	fmt.Println("ready")
	<-sig
	st := c.Stats()
	if err := c.Close(); err != nil {
		return fail(err)
	}
	if err := s.close(); err != nil {
		return fail(err)
	}
	fmt.Printf("done %+v\n", st)
	return 0
}

// TestCrashMidStream publishes batches while consumer processes are
// killed with SIGKILL at random moments and restarted; once the queue has
// drained, cache and store hold every published batch exactly once (the
// same answers as an engine over memstore fed the published batches).
func TestCrashMidStream(t *testing.T) {
	url := servertest.AMQP(t)
	o := queues(t, url)
	dir := t.TempDir()
	base := time.Now().UnixMilli()
	const nBatches, size = 600, 10
	batches := make([][]tsstore.Point, nBatches)
	for n := range batches {
		batches[n] = batchPoints(n, size, base)
	}
	pub := openPublisher(t, url, o.WriteQueue)
	publish := func(from, to int) error {
		for n := from; n < to; n++ {
			if err := pub.Publish(ctx, fmt.Sprintf("crash-%d", n), batches[n]); err != nil {
				return err
			}
		}
		return nil
	}
	if err := publish(0, nBatches/3); err != nil {
		t.Fatal(err)
	}
	var pubErr error
	var pubWG sync.WaitGroup
	pubWG.Go(func() { pubErr = publish(nBatches/3, nBatches) })

	conn, err := amqp.Dial(url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	depth := func() int {
		q, err := ch.QueueDeclarePassive(o.WriteQueue, true, false, false, false, nil)
		if err != nil {
			t.Fatal(err)
		}
		return q.Messages
	}

	// child starts a consumer process and returns it once it consumes.
	child := func() (*exec.Cmd, *strings.Builder, *bufio.Scanner) {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashMidStream$")
		cmd.Env = append(os.Environ(), crashEnvDir+"="+dir, crashEnvURL+"="+url, crashEnvQueue+"="+o.WriteQueue, crashEnvName+"="+o.Name)
		sc, stderr := crashtest.Start(t, cmd)
		if !sc.Scan() || sc.Text() != "ready" {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			t.Fatalf("the child did not start: %q %s", sc.Text(), stderr.String())
		}
		return cmd, stderr, sc
	}
	kills := 6
	if testing.Short() {
		kills = 3
	}
	for r := range kills {
		cmd, stderr, _ := child()
		time.Sleep(time.Duration(30+rand.IntN(300)) * time.Millisecond)
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if s := stderr.String(); s != "" {
			t.Fatalf("kill %d: the child failed before it was killed: %s", r, s)
		}
		t.Logf("kill %d: %d messages ready in the queue", r, depth())
	}
	pubWG.Wait()
	if pubErr != nil {
		t.Fatal(pubErr)
	}
	for r := 0; ; r++ {
		if r == 10 {
			t.Fatal("the queue does not drain")
		}
		cmd, stderr, sc := child()
		waitFor(t, "the queue to drain", 60*time.Second, func() bool { return depth() == 0 })
		_ = cmd.Process.Signal(syscall.SIGTERM)
		for sc.Scan() {
			t.Logf("graceful child: %s", sc.Text())
		}
		if err := cmd.Wait(); err != nil || stderr.Len() > 0 {
			t.Fatalf("graceful child: %v: %s", err, stderr.String())
		}
		if depth() == 0 {
			break
		}
	}
	s, err := openCrashSystem(dir, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := s.close(); err != nil {
			t.Error(err)
		}
	}()
	if d := cmp.Diff(oracle(t, batches, base), allViews(t, s.eng, base)); d != "" {
		t.Errorf("after %d kills, cache+store differ from the published batches (-want +got):\n%s", kills, d)
	}
}
