package amqpsource

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/hourglass-io/hourglass/tsstore"
)

// directReplyTo is RabbitMQ's direct reply-to pseudo-queue.
const directReplyTo = "amq.rabbitmq.reply-to"

// ClientOptions configures a Publisher or a Client. A nil *ClientOptions
// means the defaults.
type ClientOptions struct {
	// Queue is the queue published to: DefaultWriteQueue for a
	// Publisher, DefaultReadQueue for a Client when "".
	Queue string
	// Config is the AMQP connection configuration.
	Config amqp.Config
}

// Publisher publishes write batches with publisher confirms: Publish
// returns once the broker has taken responsibility for the message. It
// reconnects on the next Publish after a lost connection. Safe for
// concurrent use.
type Publisher struct {
	url   string
	queue string
	cfg   amqp.Config

	mu     sync.Mutex // guards conn, ch and closed
	conn   *amqp.Connection
	ch     *amqp.Channel
	closed bool
}

// OpenPublisher connects to the broker at url and declares the queue
// (durable, as the Consumer declares it).
func OpenPublisher(ctx context.Context, url string, opts *ClientOptions) (*Publisher, error) {
	p := &Publisher{url: url, queue: DefaultWriteQueue}
	if opts != nil {
		p.cfg = opts.Config
		if opts.Queue != "" {
			p.queue = opts.Queue
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, err := p.channelLocked(); err != nil {
		return nil, err
	}
	return p, nil
}

// channelLocked returns the open channel, connecting first when needed.
// p.mu is held.
func (p *Publisher) channelLocked() (*amqp.Channel, error) {
	if p.closed {
		return nil, tsstore.Errorf(tsstore.ErrClosed, "amqpsource: publisher")
	}
	if p.ch != nil && !p.ch.IsClosed() {
		return p.ch, nil
	}
	p.dropLocked()
	conn, err := amqp.DialConfig(p.url, p.cfg)
	if err != nil {
		return nil, tsstore.Errorf(tsstore.ErrUnavailable, "amqpsource: dial: %w", err)
	}
	ch, err := conn.Channel()
	if err == nil {
		err = ch.Confirm(false)
	}
	if err == nil {
		_, err = ch.QueueDeclare(p.queue, true, false, false, false, nil)
	}
	if err != nil {
		conn.Close()
		return nil, tsstore.Errorf(tsstore.ErrUnavailable, "amqpsource: publisher channel: %w", err)
	}
	p.conn, p.ch = conn, ch
	return ch, nil
}

func (p *Publisher) dropLocked() {
	if p.conn != nil {
		_ = p.conn.Close()
	}
	p.conn, p.ch = nil, nil
}

// Publish sends points as one batch with the idempotency key id (the
// AMQP MessageId) and waits for the broker's confirm. On an error the
// message may or may not have been taken: publish it again with the same
// id, and the consumer counts it once.
func (p *Publisher) Publish(ctx context.Context, id string, points []tsstore.Point) error {
	body, err := EncodeBatch(points)
	if err != nil {
		return err
	}
	return p.PublishBody(ctx, id, body)
}

// PublishBody is Publish with a ready body (see Batch).
func (p *Publisher) PublishBody(ctx context.Context, id string, body []byte) error {
	p.mu.Lock()
	ch, err := p.channelLocked()
	p.mu.Unlock()
	if err != nil {
		return err
	}
	dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", p.queue, false, false, amqp.Publishing{
		ContentType: ContentType, MessageId: id, DeliveryMode: amqp.Persistent, Timestamp: time.Now(), Body: body,
	})
	if err != nil {
		p.reset(ch)
		return tsstore.Errorf(tsstore.ErrUnavailable, "amqpsource: publish %q: %w", id, err)
	}
	ok, err := dc.WaitContext(ctx)
	if err != nil {
		return fmt.Errorf("amqpsource: publish %q: waiting for the confirm: %w", id, err)
	}
	if !ok {
		p.reset(ch)
		return tsstore.Errorf(tsstore.ErrUnavailable, "amqpsource: publish %q: not confirmed by the broker", id)
	}
	return nil
}

// reset drops the connection of ch if it is still the current one.
func (p *Publisher) reset(ch *amqp.Channel) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ch == ch {
		p.dropLocked()
	}
}

// Close closes the connection. Later calls return nil.
func (p *Publisher) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	p.dropLocked()
	return nil
}

// Client sends read requests (queries) to the read queue and receives
// the answers on RabbitMQ's direct reply-to, matched by correlation id. A
// Client does not reconnect: after its connection is lost every Query
// fails with tsstore.ErrUnavailable; open a new one. Safe for concurrent
// use.
type Client struct {
	queue   string
	conn    *amqp.Connection
	ch      *amqp.Channel
	wg      sync.WaitGroup
	mu      sync.Mutex // guards waiting and gone
	waiting map[string]chan []byte
	gone    bool
}

// OpenClient connects to the broker at url, declares the read queue
// (durable, as the Consumer declares it) and starts receiving replies.
func OpenClient(ctx context.Context, url string, opts *ClientOptions) (*Client, error) {
	c := &Client{queue: DefaultReadQueue, waiting: map[string]chan []byte{}}
	var cfg amqp.Config
	if opts != nil {
		cfg = opts.Config
		if opts.Queue != "" {
			c.queue = opts.Queue
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	conn, err := amqp.DialConfig(url, cfg)
	if err != nil {
		return nil, tsstore.Errorf(tsstore.ErrUnavailable, "amqpsource: dial: %w", err)
	}
	ch, err := conn.Channel()
	var replies <-chan amqp.Delivery
	if err == nil {
		_, err = ch.QueueDeclare(c.queue, true, false, false, false, nil)
	}
	if err == nil {
		replies, err = ch.Consume(directReplyTo, "", true, false, false, false, nil)
	}
	if err != nil {
		conn.Close()
		return nil, tsstore.Errorf(tsstore.ErrUnavailable, "amqpsource: client: %w", err)
	}
	c.conn, c.ch = conn, ch
	c.wg.Go(func() {
		for d := range replies {
			c.mu.Lock()
			w := c.waiting[d.CorrelationId]
			delete(c.waiting, d.CorrelationId)
			c.mu.Unlock()
			if w != nil {
				w <- d.Body
			}
		}
		c.mu.Lock()
		c.gone = true
		for id, w := range c.waiting {
			close(w)
			delete(c.waiting, id)
		}
		c.mu.Unlock()
	})
	return c, nil
}

// Query sends q and waits for its answer. When ctx has a deadline the
// request expires in the queue at that deadline.
func (c *Client) Query(ctx context.Context, q tsstore.Query) (*tsstore.Result, error) {
	body, err := EncodeQuery(q)
	if err != nil {
		return nil, err
	}
	var idb [12]byte
	_, _ = rand.Read(idb[:])
	corr := hex.EncodeToString(idb[:])
	w := make(chan []byte, 1)
	c.mu.Lock()
	if c.gone {
		c.mu.Unlock()
		return nil, tsstore.Errorf(tsstore.ErrUnavailable, "amqpsource: client connection lost")
	}
	c.waiting[corr] = w
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.waiting, corr)
		c.mu.Unlock()
	}()
	msg := amqp.Publishing{ContentType: ContentType, CorrelationId: corr, ReplyTo: directReplyTo, Timestamp: time.Now(), Body: body}
	if dl, ok := ctx.Deadline(); ok {
		msg.Expiration = strconv.FormatInt(max(1, time.Until(dl).Milliseconds()), 10)
	}
	if err := c.ch.PublishWithContext(ctx, "", c.queue, false, false, msg); err != nil {
		return nil, tsstore.Errorf(tsstore.ErrUnavailable, "amqpsource: send query: %w", err)
	}
	select {
	case b, ok := <-w:
		if !ok {
			return nil, tsstore.Errorf(tsstore.ErrUnavailable, "amqpsource: client connection lost")
		}
		return DecodeResult(b)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Close closes the connection and waits for the reply receiver.
func (c *Client) Close() error {
	err := c.conn.Close()
	c.wg.Wait()
	if err == amqp.ErrClosed {
		err = nil
	}
	return err
}
