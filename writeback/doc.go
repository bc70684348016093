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
// the sealed generation's cells their Seq (the generation number modulo
// the cell width in ms; seals are paced so that no cell can get points in
// two generations with the same Seq: about one per 8.7 s on average with
// the defaults, in bursts of up to 100, see Options.SealSpacing), writes
// them to the store oldest
// first while it appends the generation's raw log to every archive in
// segments of at most SegmentPoints (encoding up to GOMAXPROCS segments at
// once), and only after all of that succeeded commits the
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
// # One writer per series
//
// Seq numbers are per engine. Two engines must not hold points of the same
// series at once (DESIGN.md: one writer per merchant; the balancer's
// merchant affinity keeps a merchant on one server). When a merchant moves,
// flush the old server before the new one takes it.
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
