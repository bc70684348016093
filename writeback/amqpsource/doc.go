// Package amqpsource feeds the write-back engine from RabbitMQ (AMQP
// 0-9-1, the protocol of Amazon MQ for RabbitMQ), at least once and
// without counting a redelivered batch twice, and answers queries sent
// over the broker.
//
// # Messages
//
// Writes and reads are classified onto separate queues (Options.WriteQueue,
// Options.ReadQueue; published through the default exchange with the queue
// name as routing key), each with its own consumer, prefetch (basic.qos)
// and number of workers, so a flood of one never starves the other.
//
// A write message's body is a [Batch] in JSON (points with metric, labels,
// a timestamp in ms or RFC 3339, value); its MessageId property is the
// batch's idempotency key. A read message's body is a [QueryRequest]; the
// [QueryReply] goes to the message's ReplyTo with its CorrelationId.
// [Publisher] publishes batches with publisher confirms; [Client] sends
// queries and waits for their answers on RabbitMQ's direct reply-to.
//
// # Delivery
//
// A [Consumer] acknowledges a write delivery only after the engine
// acknowledged the write. A message without an id, with a malformed body,
// or whose points the engine rejects (tsstore.ErrInvalid) is published to
// the dead-letter queue with the reason in the [HeaderReason] header
// (waiting for the broker's confirm) and then acknowledged: never dropped,
// never blocking the queue. A transient engine error (ErrUnavailable,
// ErrBackPressure) requeues the delivery after RetryBackoff. A lost
// connection is re-established with exponential backoff and jitter;
// deliveries that were not acknowledged return to the queue.
//
// # Deduplication
//
// The consumer keeps a journal of recent message ids next to the engine's
// cache, and every writer (one of WriteConcurrency) numbers its writes.
// For each write delivery:
//
//  1. an id the journal knows as applied is acknowledged without writing;
//  2. otherwise "writer w starts write number n for id" is appended to the
//     journal and fsynced (group commit);
//  3. the batch is written to the engine together with a marker point
//     (metric Options.Marker, labels consumer=<Name>, slot=<w>, value n)
//     in the same Write: the engine keeps a batch whole or not at all, so
//     the marker is in the cache exactly when the batch is;
//  4. "id applied" is appended to the journal, then the delivery is
//     acknowledged.
//
// A crash before step 2 leaves no trace and the redelivery is written. A
// crash between 2 and 4 leaves the id pending; on restart (and on a write
// error that leaves the outcome open) the consumer asks the engine for the
// largest marker value of writer w: it is at least n exactly when write n
// landed, because a writer's numbers increase and its next write starts
// only after this one ended. So the pending id is settled as applied or
// not before its redelivery is looked at, and a redelivered batch is
// counted once whatever moment the process died at. A crash after 4 and
// before the acknowledgement is a plain duplicate, recognised in step 1.
//
// The windows that remain, by design:
//   - The journal is per consumer process: a message redelivered to a
//     consumer with another journal and engine is not recognised. Run one
//     consumer per engine and queue, so that a redelivery reaches the
//     journal that saw the message.
//   - Only the last DedupeIDs to 2×DedupeIDs ids are remembered; a copy of
//     a message published again later than that is counted again.
//   - With DisableMarker, or a Processor that drops the marker metric, a
//     crash between the engine's acknowledgement and step 4 writes the
//     batch again on redelivery (at least once, not exactly once).
//   - The consumer is as durable as the engine's writes: with memory
//     durability, or fsync on an interval and a machine crash, an
//     acknowledged message can be lost with the cache. Use synced
//     durability (localcache.FsyncAlways) for no loss.
//
// Marker points are ordinary points: they are flushed to the store and
// archived, one per batch, in one series per writer.
//
// # Metrics
//
// [Consumer.Stats] and the opt-in [Consumer.Collector]: consumed, acked,
// redelivered, duplicates, dead-lettered, requeued, reconnects, and the lag
// as queue depths (polled every LagInterval) and the age of the last
// message's timestamp.
//
// # Concurrency
//
// Consumer, Publisher and Client are safe for concurrent use. A Consumer's
// goroutines stop in Close, which waits for them.
//
// # Errors
//
// Broker failures are tsstore.ErrUnavailable; bad messages and options are
// tsstore.ErrInvalid; use after Close is tsstore.ErrClosed. Query errors
// travel in the reply with their kind, and Client.Query returns them with
// the same kind.
package amqpsource
