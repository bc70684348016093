// Package writeback is the write-back engine of hourglass: writes are
// acknowledged once they are in the cache, a background loop flushes the
// cache to a tsstore.Store and to the archives on a schedule, and queries
// merge cache and store so that a merchant sees its own writes at once,
// exactly.
//
// # Write path
//
// [Engine.Write] validates the points (names, labels, finite values, a
// timestamp within MaxLate/MaxFuture of now), runs the Processor over
// them, and hands the raw and processed points to the [Cache] as one
// [Batch]: the cache appends the raw points to its log and merges the
// processed ones into the cells of its open generation, atomically, and
// returns once the batch's [Durability] is reached. Then, and only then,
// the write is acknowledged. A batch with one bad point is rejected whole.
//
// # Flush
//
// A flush seals the open generation (new writes go to the next one), gives
// the sealed generation's cells their store identity (see Writer ids
// below), writes them to the store oldest first, Options.FlushChunk cells
// at a time (a cache that lists them in flush order, [SealedCellLister],
// spares the flush a copy of all of them), while it appends the
// generation's raw log to every archive in segments of at most
// SegmentPoints (encoding up to GOMAXPROCS segments at once), and only
// after all of that succeeded commits the
// generation: the cache drops it. Every step is idempotent, so a crash or
// an error anywhere before the commit replays the same flush and a crash
// after it loses nothing. Triggers: the interval (45 min ± 5 %), the cache
// size, [Engine.Flush], and [Engine.Close]. A flush that would overrun its
// budget (15 min) at the measured store speed stops, reports the overrun
// and continues at once in a new flush. While the store or an archive is
// down writes are still acknowledged until the cache reaches its bound,
// then refused with tsstore.ErrBackPressure; the backlog drains on
// recovery, at DrainRate when set.
//
// While flush work runs, [Engine.Admit] lets at most Options.FlushWriters
// writes run at once (half of GOMAXPROCS by default), so that a flush
// under full ingest gets more of the CPU and ends sooner; callers that
// decode requests (httpapi, amqpsource) call it before decoding. At most
// Options.FlushWaiters writes wait (64 per GOMAXPROCS by default); one
// more fails at once with tsstore.ErrBackPressure. Flush work that makes
// no progress for Options.FlushStall (10 s) holds no write back.
// Stats.Flushing and the gauge hourglass_writeback_flushing say when
// flush work runs.
//
// # Quarantine
//
// A flush never halts on cells a store refuses for good. When a store
// Write fails with tsstore.ErrConflict or tsstore.ErrInvalid, the engine
// bisects the chunk (rewriting a stored cell is a no-op) down to the
// single cells the store refuses, writes all the others, keeps the refused
// ones durably in the cache's quarantine with the store's reason
// ([QuarantineCache]: localcache's append-only, fsynced, CRC-checked
// QUARANTINE file; rediscache's {prefix}:quarantine hash), logs one line
// per cell naming it and the reason, and commits the generation.
// [Engine.Quarantined] lists them, [Engine.Resubmit] writes them to the
// store again once the cause is fixed (those that land leave the
// quarantine); Stats and the metrics hourglass_writeback_quarantined_cells_total
// and hourglass_writeback_quarantined_cells count them. Quarantined cells
// are in neither the store nor the cache's generations, so Query does not
// count them until they land. Retryable errors (tsstore.ErrUnavailable,
// back-pressure) keep the generation sealed and are retried as before. A
// cache without the capability keeps that behaviour for refusals too,
// with an error saying so.
//
// # Read path
//
// [Engine.Query] reads the cache's selected cells first, then answers from
// the store alone for the buckets older than the oldest of them, and merges
// the rest by cell identity: a cell that is being flushed, present in both
// for a moment, counts once. A query never misses an acknowledged point and
// never counts one twice (the property test in this package checks it
// against memstore under concurrent writes, flushes, failures and
// restarts).
//
// # Writer ids
//
// Every cache has a writer id ([Cache.WriterID]): random, made once per
// data directory (localcache: the file WRITER) or Redis prefix (rediscache:
// the key {prefix}:writer), never the host name, and the same across
// restarts; Options.Source may set it explicitly. The engine's writer id
// is also the source of its archive segments, so generation g's raw points
// are segment (source id, generation g) and its cells are stored with
// Writer = the id (for g below the cell width in ms, 60,000
// with 1-minute cells; "<id>/<g/60000>" after) and Seq = g mod 60,000, so
// (Writer, Seq) is unique per generation and per engine: partials of two
// engines, or of two generations of one engine, never share an identity,
// and seals need no pacing. Several engines may therefore hold points of
// the same series at once (a merchant that reaches two servers when the
// balancer ejects one, or on a restart): the store keeps their partials
// apart and sums them. Generations a cache held before it had a writer id
// (a data directory or prefix written by an older version) keep the legacy
// writer "" and the archive source of that time, so a crash-replayed flush
// of one is neither stored nor archived twice.
//
// Each engine's Query and Cells merge its own cache with the store: a
// point another engine holds in its cache is seen once that engine has
// flushed it.
//
// # Peers
//
// With Options.Peers, a query also merges the cells that other live
// writers (the other servers of a cluster) hold in their caches, read
// after this engine's cache and before the store, so that a cell a peer
// flushes meanwhile counts once. [Engine.CachedCells] is what an engine
// offers its peers; [EnginePeers] serves engines of one process,
// rediscache.Registry the other prefixes of one Redis, and
// writeback/peerhttp other servers over HTTP. A peer that does not answer
// makes the answer partial, never silently: [Engine.QueryDetailed] and
// [Engine.CellsDetailed] name the missing peers, and every partial answer
// counts in Stats.PartialAnswers (hourglass_writeback_partial_answers_total)
// and is logged.
//
// # Caches
//
// localcache (memory + write-ahead log) is the embedded default; rediscache
// keeps the cache in Redis. Both pass writeback/cachetest.
//
// # Concurrency
//
// An Engine is safe for concurrent use. Flushes are serialised; writes and
// queries run concurrently with them.
//
// # Errors
//
// tsstore.ErrInvalid for bad points and queries (nothing of the batch is
// kept), tsstore.ErrBackPressure when the cache is full,
// tsstore.ErrClosed after Close; store, archive and cache errors are
// wrapped with what was being done.
package writeback
