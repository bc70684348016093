package amqpsource

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/writeback"
)

// Defaults of Options.
const (
	DefaultWriteQueue       = "hourglass.writes"
	DefaultReadQueue        = "hourglass.reads"
	DefaultDeadLetterSuffix = ".dead"
	// DefaultWritePrefetch and DefaultWriteConcurrency: a few batches per
	// worker in flight keep the engine busy while acks travel.
	DefaultWritePrefetch    = 32
	DefaultWriteConcurrency = 4
	// DefaultReadPrefetch and DefaultReadConcurrency are separate limits
	// so that a flood of writes never starves reads, nor reads writes.
	DefaultReadPrefetch    = 8
	DefaultReadConcurrency = 2
	// DefaultMarker is the metric of the marker point written with every
	// batch (see Options.Marker).
	DefaultMarker = "amqpsource_applied"
	// DefaultDedupeIDs is the number of message ids per journal segment:
	// between it and twice it recent message ids are remembered.
	DefaultDedupeIDs        = 1 << 17
	DefaultReconnectBackoff = 100 * time.Millisecond
	DefaultMaxReconnect     = 30 * time.Second
	DefaultRetryBackoff     = time.Second
	DefaultWriteTimeout     = 30 * time.Second
	DefaultLagInterval      = 5 * time.Second
)

// Headers set on dead-lettered messages.
const (
	// HeaderReason says why the message was dead-lettered.
	HeaderReason = "x-hourglass-reason"
	// HeaderQueue names the queue the message came from.
	HeaderQueue = "x-hourglass-queue"
)

// Engine is what a Consumer needs of the write-back engine;
// *writeback.Engine is one.
type Engine interface {
	// Write acknowledges once the points are durable in the cache; a
	// batch is kept whole or not at all.
	Write(ctx context.Context, points []tsstore.Point) error
	// Query answers a query exactly from cache and store.
	Query(ctx context.Context, q tsstore.Query) (*tsstore.Result, error)
	// CellWidth is the width of the store's cells.
	CellWidth() time.Duration
}

var _ Engine = (*writeback.Engine)(nil)

// Options configures a Consumer. A nil *Options means the defaults; every
// zero field means its default.
type Options struct {
	// Name identifies the consumer: the "consumer" label of its marker
	// points, its AMQP consumer tags and connection name. It must stay the
	// same across restarts over the same journal. "" means WriteQueue.
	Name string
	// WriteQueue holds write batches (Batch bodies); ReadQueue holds read
	// requests (QueryRequest bodies). Both are declared durable, published
	// to through the default exchange with the queue name as routing key.
	WriteQueue, ReadQueue string
	// DisableReads turns the read consumer off.
	DisableReads bool
	// DeadLetterQueue receives invalid messages with HeaderReason; ""
	// means WriteQueue + DefaultDeadLetterSuffix.
	DeadLetterQueue string
	// WritePrefetch is the most unacknowledged write deliveries (AMQP
	// basic.qos); WriteConcurrency the number of concurrent writers.
	WritePrefetch, WriteConcurrency int
	// ReadPrefetch and ReadConcurrency are the same for reads.
	ReadPrefetch, ReadConcurrency int
	// Marker is the metric of the marker point added to every batch:
	// labels consumer=<Name>, slot=<writer>, value the writer's sequence
	// number. It makes the dedupe record atomic with the write (see the
	// package comment). The engine's Processor must pass it through.
	Marker string
	// DisableMarker writes no marker: after a crash during a write the
	// batch is written again (at least once, possibly twice).
	DisableMarker bool
	// DedupeIDs is the number of message ids per journal segment.
	DedupeIDs int
	// ReconnectBackoff is the first wait before reconnecting; it doubles,
	// with jitter, up to MaxReconnectBackoff.
	ReconnectBackoff, MaxReconnectBackoff time.Duration
	// RetryBackoff is the wait before a delivery that failed for a
	// transient reason (tsstore.ErrUnavailable, ErrBackPressure) is
	// requeued.
	RetryBackoff time.Duration
	// WriteTimeout bounds one engine write or query.
	WriteTimeout time.Duration
	// LagInterval is how often the queue depths are polled.
	LagInterval time.Duration
	// Config is the AMQP connection configuration (Dial, Heartbeat, TLS,
	// Properties). Properties["connection_name"] defaults to Name.
	Config amqp.Config
	// Logger receives connection and delivery errors; nil means
	// slog.Default().
	Logger *slog.Logger
}

// Consumer feeds a write-back engine from RabbitMQ: write batches from
// WriteQueue, read requests from ReadQueue (answered on their ReplyTo).
// It reconnects with backoff until Close. Safe for concurrent use.
type Consumer struct {
	url string
	eng Engine
	// admitter is eng as an Admitter, nil when it is not one.
	admitter Admitter
	opts     Options
	log      *slog.Logger
	j        *journal
	cfg      amqp.Config

	stop      chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error

	stats consumerStats
}

type consumerStats struct {
	consumed, reads, acked, redelivered, duplicates atomic.Int64
	deadLettered, requeued, reconnects, points      atomic.Int64
	writeDepth, readDepth, deadDepth                atomic.Int64
	lastTimestamp                                   atomic.Int64 // ns of the last write delivery's Timestamp
	connected                                       atomic.Bool
}

// Open opens the dedupe journal in journalDir (creating it), resolves the
// writes a previous process left unfinished, and starts consuming from the
// broker at url in the background. The journal belongs with the engine's
// cache: keep them together, and use one journal per consumer Name.
func Open(ctx context.Context, url string, eng Engine, journalDir string, opts *Options) (*Consumer, error) {
	c := &Consumer{url: url, eng: eng, stop: make(chan struct{})}
	c.admitter, _ = eng.(Admitter)
	if opts != nil {
		c.opts = *opts
	}
	o := &c.opts
	if eng == nil {
		return nil, tsstore.Errorf(tsstore.ErrInvalid, "amqpsource: Open needs an engine")
	}
	if journalDir == "" {
		return nil, tsstore.Errorf(tsstore.ErrInvalid, "amqpsource: Open needs a journal directory")
	}
	if o.WriteQueue == "" {
		o.WriteQueue = DefaultWriteQueue
	}
	if o.ReadQueue == "" {
		o.ReadQueue = DefaultReadQueue
	}
	if o.DeadLetterQueue == "" {
		o.DeadLetterQueue = o.WriteQueue + DefaultDeadLetterSuffix
	}
	if o.Name == "" {
		o.Name = o.WriteQueue
	}
	setDefault(&o.WritePrefetch, DefaultWritePrefetch)
	setDefault(&o.WriteConcurrency, DefaultWriteConcurrency)
	setDefault(&o.ReadPrefetch, DefaultReadPrefetch)
	setDefault(&o.ReadConcurrency, DefaultReadConcurrency)
	setDefault(&o.DedupeIDs, DefaultDedupeIDs)
	setDefault(&o.ReconnectBackoff, DefaultReconnectBackoff)
	setDefault(&o.MaxReconnectBackoff, DefaultMaxReconnect)
	setDefault(&o.RetryBackoff, DefaultRetryBackoff)
	setDefault(&o.WriteTimeout, DefaultWriteTimeout)
	setDefault(&o.LagInterval, DefaultLagInterval)
	if o.Marker == "" {
		o.Marker = DefaultMarker
	}
	if err := c.marker(0, 1, time.Now().UnixMilli()).Validate(); err != nil {
		return nil, fmt.Errorf("amqpsource: Options.Marker or Name: %w", err)
	}
	c.log = o.Logger
	if c.log == nil {
		c.log = slog.Default()
	}
	c.cfg = o.Config
	if c.cfg.Properties == nil {
		c.cfg.Properties = amqp.NewConnectionProperties()
	}
	if _, ok := c.cfg.Properties["connection_name"]; !ok {
		c.cfg.Properties["connection_name"] = o.Name
	}
	j, err := openJournal(journalDir, o.DedupeIDs)
	if err != nil {
		return nil, err
	}
	c.j = j
	for _, p := range j.dangling() {
		if err := c.settle(ctx, p); err != nil {
			j.close()
			return nil, err
		}
	}
	c.wg.Add(1)
	go c.run()
	return c, nil
}

func setDefault[T int | time.Duration](v *T, d T) {
	if *v <= 0 {
		*v = d
	}
}

// Run consumes until ctx is done, then closes the consumer.
func Run(ctx context.Context, url string, eng Engine, journalDir string, opts *Options) error {
	c, err := Open(ctx, url, eng, journalDir, opts)
	if err != nil {
		return err
	}
	<-ctx.Done()
	return c.Close()
}

// Close stops consuming: the writers finish and acknowledge the deliveries
// they hold, the rest return to the queue. It waits for every goroutine of
// the consumer and closes the journal. Later calls return the first
// result.
func (c *Consumer) Close() error {
	c.closeOnce.Do(func() {
		close(c.stop)
		c.wg.Wait()
		c.closeErr = c.j.close()
	})
	return c.closeErr
}

func (c *Consumer) stopped() bool {
	select {
	case <-c.stop:
		return true
	default:
		return false
	}
}

// sleep waits d or until Close; false means Close.
func (c *Consumer) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-c.stop:
		return false
	}
}

func (c *Consumer) run() {
	defer c.wg.Done()
	backoff := c.opts.ReconnectBackoff
	for !c.stopped() {
		began := time.Now()
		err := c.session()
		c.stats.connected.Store(false)
		if c.stopped() {
			return
		}
		c.stats.reconnects.Add(1)
		if time.Since(began) > c.opts.MaxReconnectBackoff {
			backoff = c.opts.ReconnectBackoff
		}
		c.log.Warn("amqpsource: connection lost; reconnecting", "err", err, "backoff", backoff)
		if !c.sleep(backoff/2 + rand.N(backoff/2+1)) {
			return
		}
		backoff = min(2*backoff, c.opts.MaxReconnectBackoff)
	}
}

// session runs one connection: declares the queues, consumes until the
// connection or a channel closes or the consumer stops, and returns once
// its workers have finished.
func (c *Consumer) session() error {
	o := &c.opts
	conn, err := amqp.DialConfig(c.url, c.cfg)
	if err != nil {
		return tsstore.Errorf(tsstore.ErrUnavailable, "amqpsource: dial: %w", err)
	}
	var watchers sync.WaitGroup
	defer func() {
		conn.Close()
		watchers.Wait()
	}()
	closed := make(chan *amqp.Error, 1)
	conn.NotifyClose(closed)

	var chans []*amqp.Channel
	open := func() (*amqp.Channel, error) {
		ch, err := conn.Channel()
		if err != nil {
			return nil, tsstore.Errorf(tsstore.ErrUnavailable, "amqpsource: open channel: %w", err)
		}
		chans = append(chans, ch)
		return ch, nil
	}
	decl, err := open()
	if err != nil {
		return err
	}
	queues := []string{o.WriteQueue, o.DeadLetterQueue}
	if !o.DisableReads {
		queues = append(queues, o.ReadQueue)
	}
	for _, q := range queues {
		if _, err := decl.QueueDeclare(q, true, false, false, false, nil); err != nil {
			return tsstore.Errorf(tsstore.ErrUnavailable, "amqpsource: declare queue %s: %w", q, err)
		}
	}
	pub, err := open()
	if err != nil {
		return err
	}
	if err := pub.Confirm(false); err != nil {
		return tsstore.Errorf(tsstore.ErrUnavailable, "amqpsource: confirm mode: %w", err)
	}

	stopWorkers := make(chan struct{})
	var wg sync.WaitGroup
	startConsumer := func(queue, tag string, prefetch, workers int, handle func(w int, ch *amqp.Channel, d *amqp.Delivery)) error {
		ch, err := open()
		if err != nil {
			return err
		}
		if err := ch.Qos(prefetch, 0, false); err != nil {
			return tsstore.Errorf(tsstore.ErrUnavailable, "amqpsource: qos: %w", err)
		}
		ds, err := ch.Consume(queue, tag, false, false, false, false, nil)
		if err != nil {
			return tsstore.Errorf(tsstore.ErrUnavailable, "amqpsource: consume %s: %w", queue, err)
		}
		for w := range workers {
			wg.Go(func() {
				for {
					select {
					case <-stopWorkers:
						return
					case d, ok := <-ds:
						if !ok {
							return
						}
						handle(w, ch, &d)
					}
				}
			})
		}
		return nil
	}
	defer wg.Wait()
	defer close(stopWorkers)
	err = startConsumer(o.WriteQueue, o.Name+".writes", o.WritePrefetch, o.WriteConcurrency, func(w int, ch *amqp.Channel, d *amqp.Delivery) {
		c.handleWrite(w, ch, pub, d)
	})
	if err != nil {
		return err
	}
	if !o.DisableReads {
		err = startConsumer(o.ReadQueue, o.Name+".reads", o.ReadPrefetch, o.ReadConcurrency, func(_ int, ch *amqp.Channel, d *amqp.Delivery) {
			c.handleRead(ch, pub, d)
		})
		if err != nil {
			return err
		}
	}
	chClosed := make(chan *amqp.Error, len(chans))
	for _, ch := range chans {
		n := ch.NotifyClose(make(chan *amqp.Error, 1))
		watchers.Go(func() {
			e, ok := <-n
			if !ok {
				e = nil
			}
			chClosed <- e
		})
	}
	c.stats.connected.Store(true)
	c.pollDepth(decl, queues)
	tick := time.NewTicker(o.LagInterval)
	defer tick.Stop()
	for {
		select {
		case <-c.stop:
			return nil
		case e := <-closed:
			return tsstore.Errorf(tsstore.ErrUnavailable, "amqpsource: connection closed: %v", e)
		case e := <-chClosed:
			return tsstore.Errorf(tsstore.ErrUnavailable, "amqpsource: channel closed: %v", e)
		case <-tick.C:
			c.pollDepth(decl, queues)
		}
	}
}

func (c *Consumer) pollDepth(ch *amqp.Channel, queues []string) {
	for i, q := range queues {
		st, err := ch.QueueDeclarePassive(q, true, false, false, false, nil)
		if err != nil {
			return // the channel is gone; the session ends
		}
		n := int64(st.Messages)
		switch i {
		case 0:
			c.stats.writeDepth.Store(n)
		case 1:
			c.stats.deadDepth.Store(n)
		case 2:
			c.stats.readDepth.Store(n)
		}
	}
}

// marker is the marker point of writer slot's write number seq.
func (c *Consumer) marker(slot int, seq uint64, ms int64) tsstore.Point {
	return tsstore.Point{
		Metric:    c.opts.Marker,
		Labels:    tsstore.Labels{{Name: "consumer", Value: c.opts.Name}, {Name: "slot", Value: strconv.Itoa(slot)}},
		Timestamp: ms,
		Value:     float64(seq),
	}
}

// landed asks the engine whether the write of p reached the cache: the
// writer's marker series holds a value of at least p.seq exactly when it
// did, because a writer's seqs increase and its next write starts only
// after this one ended.
func (c *Consumer) landed(ctx context.Context, p pending) (bool, error) {
	if c.opts.DisableMarker {
		return false, nil
	}
	w := c.eng.CellWidth()
	wms := w.Milliseconds()
	from := tsstore.CellStart(p.ms, w) - wms
	to := tsstore.CellStart(max(time.Now().UnixMilli(), p.ms), w) + 2*wms
	m := c.marker(p.slot, p.seq, p.ms)
	q := tsstore.Query{
		Metric:   m.Metric,
		Matchers: []tsstore.Matcher{{Type: tsstore.MatchEqual, Name: "consumer", Value: c.opts.Name}, {Type: tsstore.MatchEqual, Name: "slot", Value: m.Labels[1].Value}},
		From:     from, To: to, Step: time.Duration(to-from) * time.Millisecond, GroupBy: []string{},
	}
	qctx, cancel := context.WithTimeout(ctx, c.opts.WriteTimeout)
	defer cancel()
	res, err := c.eng.Query(qctx, q)
	if err != nil {
		return false, fmt.Errorf("amqpsource: look up marker of %q: %w", p.id, err)
	}
	for _, s := range res.Series {
		for _, b := range s.Buckets {
			if b.Count > 0 && b.Max >= float64(p.seq) {
				return true, nil
			}
		}
	}
	return false, nil
}

// settle resolves a dangling id through its marker.
func (c *Consumer) settle(ctx context.Context, p pending) error {
	ok, err := c.landed(ctx, p)
	if err != nil {
		return err
	}
	if ok {
		return c.j.applied(p.id)
	}
	return c.j.aborted(p.id)
}

func (c *Consumer) handleWrite(slot int, ch, pub *amqp.Channel, d *amqp.Delivery) {
	c.stats.consumed.Add(1)
	if d.Redelivered {
		c.stats.redelivered.Add(1)
	}
	if !d.Timestamp.IsZero() {
		c.stats.lastTimestamp.Store(d.Timestamp.UnixNano())
	}
	id := d.MessageId
	if id == "" {
		c.deadLetter(ch, pub, d, c.opts.WriteQueue, "no message id (the idempotency key)")
		return
	}
	release, err := c.admit()
	if errors.Is(err, tsstore.ErrBackPressure) {
		c.requeue(ch, d, err) // too many writes wait for the flush
		return
	}
	if err != nil {
		return // closing: the delivery returns to the queue with the channel
	}
	defer release() // on the returns before the Write
	points, err := DecodeBatch(d.Body)
	if err != nil {
		c.deadLetter(ch, pub, d, c.opts.WriteQueue, err.Error())
		return
	}
	ctx := context.Background()
	var seq uint64
	now := time.Now().UnixMilli()
	for seq == 0 {
		res, s, wait, err := c.j.begin(id, slot, now)
		if err != nil {
			c.requeue(ch, d, err)
			return
		}
		switch res {
		case beginNew:
			seq = s
		case beginDup:
			c.stats.duplicates.Add(1)
			c.ack(d)
			return
		case beginWait:
			select {
			case <-wait:
			case <-c.stop:
				return // the delivery returns to the queue with the channel
			}
		case beginDangling:
			// Only ids left by an earlier process are dangling, and Open
			// settled those; this is a safety net.
			if p, ok := c.j.lookup(id); ok {
				if err := c.settle(ctx, p); err != nil {
					c.requeue(ch, d, err)
					return
				}
			}
		}
	}
	wctx, cancel := context.WithTimeout(ctx, c.opts.WriteTimeout)
	err = c.eng.Write(wctx, append(points, c.marker(slot, seq, now)))
	cancel()
	release() // what follows (dead letters, settling an unknown outcome) is not a write
	switch {
	case err == nil:
	case errors.Is(err, tsstore.ErrInvalid):
		// Nothing of a rejected batch is kept.
		c.finish(id, false)
		c.deadLetter(ch, pub, d, c.opts.WriteQueue, err.Error())
		return
	case errors.Is(err, tsstore.ErrBackPressure) || errors.Is(err, tsstore.ErrClosed):
		c.finish(id, false)
		c.requeue(ch, d, err)
		return
	default:
		// Perhaps written, perhaps not: ask the marker. The writer takes
		// no other delivery until it knows, so that seq stays its last
		// write (what makes the marker's answer exact).
		var ok bool
		for {
			var lerr error
			if ok, lerr = c.landed(ctx, pending{id: id, slot: slot, seq: seq, ms: now}); lerr == nil {
				break
			}
			c.log.Warn("amqpsource: write outcome unknown; asking the engine again", "id", id, "err", err, "lookup", lerr)
			if !c.sleep(c.opts.RetryBackoff) {
				// Closing: the id stays pending and is settled when the
				// journal is opened again, before anything is consumed.
				c.j.release(id)
				return
			}
		}
		if !ok {
			c.finish(id, false)
			c.requeue(ch, d, err)
			return
		}
	}
	c.finish(id, true)
	c.stats.points.Add(int64(len(points)))
	c.ack(d)
}

// Admitter is an Engine that bounds the writes running at once
// (writeback.Engine.Admit: while it flushes). A consumer calls Admit
// before decoding a delivery and releases right after its Write.
type Admitter interface {
	Admit(ctx context.Context) (release func(), err error)
}

var _ Admitter = (*writeback.Engine)(nil)

// admit waits, when the engine is an Admitter, until a delivery may be
// decoded and written. It fails with tsstore.ErrBackPressure when too
// many writes wait already, and with context.Canceled when Close came
// first.
func (c *Consumer) admit() (release func(), err error) {
	if c.admitter == nil {
		return func() {}, nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-c.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	return c.admitter.Admit(ctx)
}

func (c *Consumer) finish(id string, applied bool) {
	var err error
	if applied {
		err = c.j.applied(id)
	} else {
		err = c.j.aborted(id)
	}
	if err != nil {
		// The id stays pending on disk and is settled through its
		// marker after a restart.
		c.log.Error("amqpsource: journal", "id", id, "err", err)
	}
}

func (c *Consumer) ack(d *amqp.Delivery) {
	if err := d.Ack(false); err != nil {
		// The channel is gone; the broker redelivers and the journal
		// recognises the id.
		c.log.Warn("amqpsource: ack", "id", d.MessageId, "err", err)
		return
	}
	c.stats.acked.Add(1)
}

// requeue waits RetryBackoff and returns the delivery to its queue.
func (c *Consumer) requeue(ch *amqp.Channel, d *amqp.Delivery, cause error) {
	c.log.Warn("amqpsource: requeue after a transient failure", "id", d.MessageId, "err", cause)
	if !c.sleep(c.opts.RetryBackoff) {
		return // closing: the delivery returns with the channel
	}
	if err := d.Nack(false, true); err != nil {
		c.log.Warn("amqpsource: nack", "id", d.MessageId, "err", err)
		return
	}
	c.stats.requeued.Add(1)
}

// deadLetter publishes d to the dead-letter queue with the reason, waits
// for the broker's confirm and then acknowledges d. If the publish fails,
// d is requeued: an invalid message is never dropped.
func (c *Consumer) deadLetter(ch, pub *amqp.Channel, d *amqp.Delivery, queue, reason string) {
	if len(reason) > 1000 {
		reason = reason[:1000]
	}
	c.log.Warn("amqpsource: dead-lettering a message", "id", d.MessageId, "queue", queue, "reason", reason)
	h := amqp.Table{}
	for k, v := range d.Headers {
		h[k] = v
	}
	h[HeaderReason] = reason
	h[HeaderQueue] = queue
	ctx, cancel := context.WithTimeout(context.Background(), c.opts.WriteTimeout)
	defer cancel()
	dc, err := pub.PublishWithDeferredConfirmWithContext(ctx, "", c.opts.DeadLetterQueue, false, false, amqp.Publishing{
		Headers: h, ContentType: d.ContentType, MessageId: d.MessageId, CorrelationId: d.CorrelationId,
		Timestamp: d.Timestamp, Type: d.Type, AppId: d.AppId, ReplyTo: d.ReplyTo,
		DeliveryMode: amqp.Persistent, Body: d.Body,
	})
	if err == nil {
		var ok bool
		ok, err = dc.WaitContext(ctx)
		if err == nil && !ok {
			err = errors.New("the broker refused the message (nack)")
		}
	}
	if err != nil {
		c.requeue(ch, d, fmt.Errorf("amqpsource: dead-letter: %w", err))
		return
	}
	c.stats.deadLettered.Add(1)
	c.ack(d)
}

func (c *Consumer) handleRead(ch, pub *amqp.Channel, d *amqp.Delivery) {
	c.stats.reads.Add(1)
	if d.Redelivered {
		c.stats.redelivered.Add(1)
	}
	if d.ReplyTo == "" {
		c.deadLetter(ch, pub, d, c.opts.ReadQueue, "read request without reply-to")
		return
	}
	q, err := DecodeQuery(d.Body)
	var res *tsstore.Result
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), c.opts.WriteTimeout)
		res, err = c.eng.Query(ctx, q)
		cancel()
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.opts.WriteTimeout)
	defer cancel()
	err = ch.PublishWithContext(ctx, "", d.ReplyTo, false, false, amqp.Publishing{
		ContentType: ContentType, CorrelationId: d.CorrelationId, Timestamp: time.Now(), Body: EncodeResult(res, err),
	})
	if err != nil {
		c.log.Warn("amqpsource: reply", "reply_to", d.ReplyTo, "err", err)
		return // the request returns to the queue with the channel
	}
	c.ack(d)
}
