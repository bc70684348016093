package amqpsource_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/hourglass-io/hourglass/internal/servertest"
	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/tsstore/memstore"
	"github.com/hourglass-io/hourglass/tsstore/storetest"
	"github.com/hourglass-io/hourglass/writeback"
	"github.com/hourglass-io/hourglass/writeback/amqpsource"
)

func openConsumer(t testing.TB, url string, eng amqpsource.Engine, opts amqpsource.Options) *amqpsource.Consumer {
	t.Helper()
	c, err := amqpsource.Open(ctx, url, eng, t.TempDir(), &opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("consumer close: %v", err)
		}
	})
	return c
}

func openPublisher(t testing.TB, url, queue string) *amqpsource.Publisher {
	t.Helper()
	p, err := amqpsource.OpenPublisher(ctx, url, &amqpsource.ClientOptions{Queue: queue})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// TestWritesOnceWithDuplicates publishes batches, some of them twice with
// the same id (a publisher retrying), and checks that the engine holds
// every batch exactly once.
func TestWritesOnceWithDuplicates(t *testing.T) {
	url := servertest.AMQP(t)
	o := queues(t, url)
	eng := memEngine(t)
	base := time.Now().UnixMilli()
	pub := openPublisher(t, url, o.WriteQueue)
	var batches [][]tsstore.Point
	dups := 0
	for n := range 60 {
		b := batchPoints(n, 5, base)
		batches = append(batches, b)
		id := fmt.Sprintf("batch-%d", n)
		if err := pub.Publish(ctx, id, b); err != nil {
			t.Fatal(err)
		}
		if n%4 == 0 {
			if err := pub.Publish(ctx, id, b); err != nil {
				t.Fatal(err)
			}
			dups++
		}
	}
	c := openConsumer(t, url, eng, o)
	waitFor(t, "all deliveries acknowledged", 30*time.Second, func() bool { return c.Stats().Acked == int64(60+dups) })
	s := c.Stats()
	if s.Duplicates != int64(dups) || s.Points != 60*5 || s.DeadLettered != 0 {
		t.Errorf("stats %+v: want %d duplicates, 300 points, nothing dead-lettered", s, dups)
	}
	if d := cmp.Diff(oracle(t, batches, base), allViews(t, eng, base)); d != "" {
		t.Errorf("engine differs from the oracle (-want +got):\n%s", d)
	}
}

// TestDeadLetter sends poison messages between good ones: each poison
// message lands in the dead-letter queue with its reason, every good one
// in the engine.
func TestDeadLetter(t *testing.T) {
	url := servertest.AMQP(t)
	o := queues(t, url)
	o.WriteConcurrency = 2
	eng := memEngine(t)
	base := time.Now().UnixMilli()
	pub := openPublisher(t, url, o.WriteQueue)
	poison := map[string]struct {
		body   string
		reason string
	}{
		"malformed":  {`{"points": [{"metric": "views", `, "unexpected EOF"},
		"bad-metric": {`{"points": [{"metric": "1views", "labels": {"merchant": "m"}, "timestamp": 1, "value": 1}]}`, "metric name"},
		"too-old":    {`{"points": [{"metric": "views", "labels": {"merchant": "m"}, "timestamp": "2001-01-01T00:00:00Z", "value": 1}]}`, "invalid input"},
		"bad-label":  {`{"points": [{"metric": "views", "labels": {"1m": "x"}, "timestamp": 1, "value": 1}]}`, "label"},
		"":           {`{"points": []}`, "no message id"},
	}
	var batches [][]tsstore.Point
	n := 0
	for id, p := range poison {
		for range 3 {
			b := batchPoints(n, 4, base)
			batches = append(batches, b)
			if err := pub.Publish(ctx, fmt.Sprintf("good-%d", n), b); err != nil {
				t.Fatal(err)
			}
			n++
		}
		if err := pub.PublishBody(ctx, id, []byte(p.body)); err != nil {
			t.Fatal(err)
		}
	}
	c := openConsumer(t, url, eng, o)
	waitFor(t, "all deliveries acknowledged", 30*time.Second, func() bool { return c.Stats().Acked == int64(n+len(poison)) })
	if s := c.Stats(); s.DeadLettered != int64(len(poison)) || s.Points != int64(4*n) {
		t.Errorf("stats %+v: want %d dead-lettered, %d points", s, len(poison), 4*n)
	}
	if d := cmp.Diff(oracle(t, batches, base), allViews(t, eng, base)); d != "" {
		t.Errorf("engine differs from the oracle (-want +got):\n%s", d)
	}
	conn, err := amqp.Dial(url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	for range len(poison) {
		d, ok, err := ch.Get(o.DeadLetterQueue, true)
		if err != nil || !ok {
			t.Fatalf("dead-letter queue: ok %v, err %v", ok, err)
		}
		p, known := poison[d.MessageId]
		if !known {
			t.Errorf("unexpected dead letter %q", d.MessageId)
			continue
		}
		reason, _ := d.Headers[amqpsource.HeaderReason].(string)
		if string(d.Body) != p.body || !strings.Contains(reason, p.reason) || d.Headers[amqpsource.HeaderQueue] != o.WriteQueue {
			t.Errorf("dead letter %q: body %q, reason %q, headers %v; want the original body and a reason containing %q", d.MessageId, d.Body, reason, d.Headers, p.reason)
		}
		delete(poison, d.MessageId)
	}
	if _, ok, _ := ch.Get(o.DeadLetterQueue, true); ok {
		t.Error("more dead letters than poison messages")
	}
}

// TestReconnect breaks the consumer's connection while batches stream in
// and checks that it reconnects and every batch lands exactly once:
// "server" closes the connection from RabbitMQ's side with rabbitmqctl
// close_connection, "client" closes the TCP connection under the client.
func TestReconnect(t *testing.T) {
	url := servertest.AMQP(t)
	for _, side := range []string{"server", "client"} {
		t.Run(side, func(t *testing.T) {
			o := queues(t, url)
			o.ReconnectBackoff = 50 * time.Millisecond
			var mu sync.Mutex
			var conns []net.Conn
			if side == "server" {
				if _, err := exec.LookPath("rabbitmqctl"); err != nil {
					servertest.Missing(t, "rabbitmqctl", "install rabbitmq-server's tools to close connections from the server side")
				}
			} else {
				o.Config.Dial = func(network, addr string) (net.Conn, error) {
					c, err := amqp.DefaultDial(5*time.Second)(network, addr)
					if err == nil {
						mu.Lock()
						conns = append(conns, c)
						mu.Unlock()
					}
					return c, err
				}
			}
			eng := memEngine(t)
			base := time.Now().UnixMilli()
			pub := openPublisher(t, url, o.WriteQueue)
			c := openConsumer(t, url, eng, o)
			var batches [][]tsstore.Point
			publish := func(from, to int) {
				for n := from; n < to; n++ {
					b := batchPoints(n, 3, base)
					batches = append(batches, b)
					if err := pub.Publish(ctx, fmt.Sprintf("b%d", n), b); err != nil {
						t.Fatal(err)
					}
				}
			}
			n := 0
			for round := range 3 {
				publish(n, n+40)
				n += 40
				waitFor(t, "consuming", 30*time.Second, func() bool { return c.Stats().Connected })
				if side == "server" {
					closeFromServer(t, o.Name)
				} else {
					mu.Lock()
					conns[len(conns)-1].Close()
					mu.Unlock()
				}
				waitFor(t, "a reconnect", 30*time.Second, func() bool { return c.Stats().Reconnects > int64(round) })
			}
			publish(n, n+40)
			n += 40
			waitFor(t, "every batch written", 30*time.Second, func() bool { return c.Stats().Points == int64(3*n) })
			if d := cmp.Diff(oracle(t, batches, base), allViews(t, eng, base)); d != "" {
				t.Errorf("engine differs from the oracle (-want +got):\n%s", d)
			}
			t.Logf("stats after 3 broken connections: %+v", c.Stats())
		})
	}
}

// closeFromServer closes the connection named name with rabbitmqctl.
func closeFromServer(t *testing.T, name string) {
	t.Helper()
	out, err := exec.Command("rabbitmqctl", "-q", "list_connections", "pid", "client_properties").CombinedOutput()
	if err != nil {
		t.Fatalf("rabbitmqctl list_connections: %v: %s", err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		conn, props, ok := strings.Cut(line, "\t")
		if ok && strings.Contains(props, `"`+name+`"`) {
			if out, err := exec.Command("rabbitmqctl", "close_connection", conn, "test: forced close").CombinedOutput(); err != nil {
				t.Fatalf("rabbitmqctl close_connection: %v: %s", err, out)
			}
			return
		}
	}
	t.Fatalf("no connection named %s in:\n%s", name, out)
}

// TestRequestReply asks queries through the read queue and compares the
// answers with the engine's own; a bad query comes back as ErrInvalid.
func TestRequestReply(t *testing.T) {
	url := servertest.AMQP(t)
	o := queues(t, url)
	eng := memEngine(t)
	base := time.Now().UnixMilli()
	for n := range 20 {
		if err := eng.Write(ctx, batchPoints(n, 10, base)); err != nil {
			t.Fatal(err)
		}
	}
	openConsumer(t, url, eng, o)
	cl, err := amqpsource.OpenClient(ctx, url, &amqpsource.ClientOptions{Queue: o.ReadQueue})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	m, _ := tsstore.NewMatcher(tsstore.MatchRegexp, "merchant", "m[abc]")
	from := tsstore.CellStart(base, time.Minute) - 2*time.Hour.Milliseconds()
	queries := []tsstore.Query{
		{Metric: "views", From: from, To: from + 3*time.Hour.Milliseconds(), Step: time.Minute},
		{Metric: "views", Matchers: []tsstore.Matcher{m}, From: from, To: from + 3*time.Hour.Milliseconds(), Step: 10 * time.Minute, GroupBy: []string{}},
		{Metric: "views", From: from, To: from + 3*time.Hour.Milliseconds(), Step: time.Hour, GroupBy: []string{"merchant"}},
	}
	var wg sync.WaitGroup
	for i, q := range queries {
		wg.Go(func() {
			qctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			got, err := cl.Query(qctx, q)
			if err != nil {
				t.Errorf("query %d: %v", i, err)
				return
			}
			want, err := eng.Query(ctx, q)
			if err != nil {
				t.Errorf("query %d on the engine: %v", i, err)
				return
			}
			if len(want.Series) == 0 {
				t.Errorf("query %d: the engine has no data", i)
			}
			if d := cmp.Diff(want, got, cmpMatchers); d != "" {
				t.Errorf("query %d over the queue differs (-engine +reply):\n%s", i, d)
			}
		})
	}
	wg.Wait()
	_, err = cl.Query(ctx, tsstore.Query{Metric: "views", From: from, To: from + 1000, Step: 7 * time.Second})
	if !errors.Is(err, tsstore.ErrInvalid) {
		t.Errorf("a query with a bad step: got %v, want ErrInvalid", err)
	}
}

var cmpMatchers = cmp.Comparer(func(a, b tsstore.Matcher) bool { return a.String() == b.String() })

// TestAdmitWhileFlushing: while the engine flushes with its one write
// place taken, a delivery waits in Admit before it is decoded or written;
// Close does not wait for the flush, and the delivery comes back to the
// next consumer and is written once.
func TestAdmitWhileFlushing(t *testing.T) {
	url := servertest.AMQP(t)
	o := queues(t, url)
	base := time.Now().UnixMilli()
	batches := [][]tsstore.Point{batchPoints(0, 5, base), batchPoints(1, 5, base)}
	eng, store, flushed, hold := flushingWithPlaceTaken(t, 0, batches[0])
	c := openConsumer(t, url, eng, o)
	if err := openPublisher(t, url, o.WriteQueue).Publish(ctx, "batch-1", batches[1]); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the delivery waiting to be admitted", 30*time.Second, func() bool { return eng.Stats().AdmitWaits >= 1 })
	if s := c.Stats(); s.Points != 0 || s.Acked != 0 {
		t.Fatalf("stats while the delivery waits: %+v, want nothing written or acknowledged", s)
	}
	closed := make(chan error, 1)
	go func() { closed <- c.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Close waited for the flush")
	}
	hold()
	c2 := openConsumer(t, url, eng, o)
	waitFor(t, "the delivery written by the next consumer", 30*time.Second, func() bool { return c2.Stats().Acked == 1 })
	store.Let()
	if err := <-flushed; err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(oracle(t, batches, base), allViews(t, eng, base)); d != "" {
		t.Errorf("engine differs from the oracle (-want +got):\n%s", d)
	}
}

// TestAdmitRefusedRequeues: while a flush runs, a delivery the engine
// refuses because too many writes wait (FlushWaiters) goes back to its
// queue after RetryBackoff, and every batch is written once when the
// flush ends.
func TestAdmitRefusedRequeues(t *testing.T) {
	url := servertest.AMQP(t)
	o := queues(t, url)
	o.WriteConcurrency, o.WritePrefetch, o.RetryBackoff = 2, 2, 20*time.Millisecond
	base := time.Now().UnixMilli()
	batches := [][]tsstore.Point{batchPoints(0, 5, base), batchPoints(1, 5, base), batchPoints(2, 5, base)}
	eng, store, flushed, hold := flushingWithPlaceTaken(t, 1, batches[0])
	c := openConsumer(t, url, eng, o)
	pub := openPublisher(t, url, o.WriteQueue)
	for i, b := range batches[1:] {
		if err := pub.Publish(ctx, fmt.Sprintf("batch-%d", i+1), b); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "one delivery waiting and the other refused and requeued", 30*time.Second, func() bool {
		return eng.Stats().AdmitRefused >= 1 && eng.Stats().AdmitWaits >= 1 && c.Stats().Requeued >= 1
	})
	if s := c.Stats(); s.Points != 0 || s.Acked != 0 || s.DeadLettered != 0 {
		t.Fatalf("stats while the flush runs: %+v, want nothing written, acknowledged or dead-lettered", s)
	}
	hold()
	store.Let()
	if err := <-flushed; err != nil {
		t.Fatal(err)
	}
	waitFor(t, "both deliveries written", 30*time.Second, func() bool { return c.Stats().Acked == 2 })
	if d := cmp.Diff(oracle(t, batches, base), allViews(t, eng, base)); d != "" {
		t.Errorf("engine differs from the oracle (-want +got):\n%s", d)
	}
}

// flushingWithPlaceTaken makes an engine (one write at once while it
// flushes, at most flushWaiters waiting; 0: the default) over a held
// memstore that has written first and is held in its flush's first store
// Write, with the one place for a write while it flushes taken: hold gives
// it back, store.Let lets the flush go on, which then sends its error on
// flushed.
func flushingWithPlaceTaken(t *testing.T, flushWaiters int, first []tsstore.Point) (eng *writeback.Engine, store *storetest.HeldStore, flushed <-chan error, hold func()) {
	t.Helper()
	store = storetest.Hold(memstore.New(nil))
	eng = newEngineWith(t, t.TempDir(), store, 1, flushWaiters)
	t.Cleanup(store.Let) // before the engine's Close, should the test stop early
	if err := eng.Write(ctx, first); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := eng.Flush(ctx)
		done <- err
	}()
	<-store.Entered()
	hold, err := eng.Admit(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return eng, store, done, hold
}
