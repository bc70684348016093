package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	mrand "math/rand/v2"
	"time"

	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/writeback/amqpsource"
)

// queueTarget sends the workload over RabbitMQ, as the server's amqpsource
// consumer takes it: each write is one batch of raw event points published
// with amqpsource.Publisher (publisher confirms: a write's latency ends
// with the broker's confirm, not with the server's write), each read a
// query sent with amqpsource.Client and answered on the reply-to queue.
// The queue is trusted: points carry their merchant label, no token.
type queueTarget struct {
	batch int
	run   string                  // this run's id, in the message ids
	pubs  []*amqpsource.Publisher // one per worker (its own connection)
	seq   []int64                 // per worker: batches published
	cl    *amqpsource.Client
}

// openQueueTarget connects one publisher per worker and a query client.
func openQueueTarget(ctx context.Context, o options) (_ *queueTarget, err error) {
	var id [6]byte
	_, _ = rand.Read(id[:])
	t := &queueTarget{batch: o.batch, run: hex.EncodeToString(id[:]), seq: make([]int64, o.concurrency)}
	defer func() {
		if err != nil {
			t.close()
		}
	}()
	for range o.concurrency {
		p, err := amqpsource.OpenPublisher(ctx, o.queue, &amqpsource.ClientOptions{Queue: o.writeQueue})
		if err != nil {
			return nil, err
		}
		t.pubs = append(t.pubs, p)
	}
	t.cl, err = amqpsource.OpenClient(ctx, o.queue, &amqpsource.ClientOptions{Queue: o.readQueue})
	if err != nil {
		return nil, err
	}
	return t, nil
}

func (t *queueTarget) write(ctx context.Context, w int, r *mrand.Rand, m int, l *latencies) bool {
	pts, err := eventPoints(writeEvents(r, t.batch), merchantID(m), time.Now())
	if err != nil {
		l.fail(err.Error())
		return false
	}
	t.seq[w]++
	id := fmt.Sprintf("loadgen-%s-%d-%d", t.run, w, t.seq[w])
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	t0 := time.Now()
	if err := t.pubs[w].Publish(ctx, id, pts); err != nil {
		l.fail(err.Error())
		return false
	}
	l.ok = append(l.ok, time.Since(t0))
	return true
}

func (t *queueTarget) read(ctx context.Context, _ int, r *mrand.Rand, m int, l *latencies) {
	q := readQuery(r, merchantID(m), time.Now())
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	t0 := time.Now()
	if _, err := t.cl.Query(ctx, q); err != nil {
		l.fail(err.Error())
		return
	}
	l.ok = append(l.ok, time.Since(t0))
}

func (t *queueTarget) close() {
	for _, p := range t.pubs {
		_ = p.Close()
	}
	if t.cl != nil {
		_ = t.cl.Close()
	}
}

// eventPoints turns events into the raw points the server makes of them
// (examples/server: metric = the event type, labels = merchant and the
// event's attributes, value = the amount or 1, status "paid" by default).
func eventPoints(evs []event, merchant string, now time.Time) ([]tsstore.Point, error) {
	out := make([]tsstore.Point, 0, len(evs))
	for _, e := range evs {
		kv := []string{"merchant", merchant}
		v := 1.0
		if e.Amount != nil {
			v = *e.Amount
		}
		if e.Currency != "" {
			kv = append(kv, "currency", e.Currency)
		}
		if e.Type == "order" {
			s := e.Status
			if s == "" {
				s = "paid"
			}
			kv = append(kv, "status", s)
		}
		if e.Path != "" {
			kv = append(kv, "path", e.Path)
		}
		if e.Device != "" {
			kv = append(kv, "device", e.Device)
		}
		ls, err := tsstore.NewLabels(kv...)
		if err != nil {
			return nil, err
		}
		out = append(out, tsstore.Point{Metric: e.Type, Labels: ls, Timestamp: now.UnixMilli(), Value: v})
	}
	return out, nil
}

// readQuery is readPath's dashboard query as a tsstore.Query: one metric
// of merchant's last hour by minute (or 5 minutes), grouped by one of its
// labels.
func readQuery(r *mrand.Rand, merchant string, now time.Time) tsstore.Query {
	m := pick(r, metrics)
	q := tsstore.Query{Metric: m, Step: time.Minute,
		Matchers: []tsstore.Matcher{{Type: tsstore.MatchEqual, Name: "merchant", Value: merchant}}}
	if g := pick(r, groupBys[m]); g != "" {
		q.GroupBy = []string{g}
	}
	if r.IntN(4) == 0 {
		q.Step = 5 * time.Minute
	}
	q.To = tsstore.CellStart(tsstore.Millis(now), q.Step) + q.Step.Milliseconds()
	q.From = q.To - time.Hour.Milliseconds()
	return q
}
