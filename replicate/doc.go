// Package replicate is a tsstore.Store over one primary and N standbys
// (any tsstore.Store backends): writes go to all of them with a chosen ack
// level, a replica that misses writes gets durable hints and catches up in
// order, a caught-up standby is promoted when the primary fails, an epoch
// fences the old primary, and reads are routed by package balancer to a
// healthy replica that has applied the writes the reader needs.
//
// # Writes
//
// [Store.Write] (or [Store.WriteSeq], which also returns the write's
// sequence number) validates the cells, gives the write the next sequence
// number (under one lock that fixes the order), encodes it once and
// appends it to the hint log of every standby (no fsync), writes it to the
// primary directly, all on the caller's goroutine, and returns when the
// ack level ([Options.Ack]) is met:
//
//   - [AckPrimary]: the primary stored it. The standbys' appliers write it
//     from their logs (kept in memory up to QueueBytes, read back from disk
//     beyond), so no standby write is on the ack path.
//   - [AckPrimaryPlus](k), [AckQuorum], [AckAll]: the primary stored it and
//     k standbys (a majority of all replicas, every standby) applied it.
//     Before acknowledging, the hint logs of the standbys that have not
//     applied it yet are fsynced: the ack promises they will get it.
//
// The error of a write that missed its ack level says which replicas
// failed and wraps their errors. A write that failed on the primary
// becomes a hint of the primary, so the replicas converge whatever the
// outcome; cells are idempotent by identity, so replays are harmless.
//
// # Hints
//
// Each replica has a hint log in Options.Dir/hints/<name>/: append-only
// segment files of CRC-32C-checked records (write seq, time, cells),
// replayed in order by the replica's applier goroutine. A segment is
// deleted once all its records are applied; a torn record at the end (a
// crash during an append) is cut off on open; hints survive restarts and
// are replayed by the next Store opened on Dir (Prometheus remote write
// loses its catch-up on restart, #8809; this does not). Hints are fsynced
// in the background every HintSyncInterval, and before the ack at the
// levels above AckPrimary.
//
// Hints never expire silently: when a replica's pending hints would pass
// HintBudget, they are dropped and the replica is marked stale, with the
// range they covered (write seqs, cell time range, metric names, the
// cells' flush identities (Writer, Seq), the time of the newest write)
// persisted in
// Dir/state.json. When it answers again, it is re-synced, and it is never
// read while stale:
//
//   - From a healthy replica that has applied those writes (the primary
//     first): the cells of those metrics in that time range are copied
//     with Cells and Write. This is cell-exact.
//   - From the archive, when [Options.Archive] and [Options.Processor] are
//     set and no replica can serve (every replica that has the writes is
//     down or stale too, say the primary was lost while the standbys were
//     stale), or always with [Options.ResyncFromArchive]. The archive keeps
//     raw points, not cells, but each segment names the write-back flush
//     generation it comes from (source and number), and a flush gives its
//     cells an identity (Writer, Seq) made of them: an engine with writer
//     id w gives generation g's cells Writer w (or "w/<g / cell width in
//     ms>" past the width) and Seq g mod (cell width in ms), and cells
//     flushed before writers had the legacy writer "". The archived
//     generations of the missed flushes are processed again by
//     [reprocess.Rebuild] (the write-back engine's aggregation with the
//     same Processor, as reprocess does) into cells with that identity,
//     which are the cells the flush wrote; those of the stale metrics are
//     written to the replica. A flush of writer w is found only as a
//     generation of source w, so the engines must name their archive
//     segments after their writer ids (writeback Options.Source): a
//     generation of another source is never taken for it, which would
//     count one engine's points under another's identity. A flush of the
//     legacy writer is every generation whose number matches its Seq. The
//     archive is read only once it can hold every missed write:
//     ArchiveDelay after the newest (a flush archives after it has
//     written its cells), and when every missed flush has an archived
//     generation; until then the replica stays stale (logged once). The cells are exact when the
//     sums do not depend on the order of the points (the archive returns
//     a segment's points in time order, the cache added them in arrival
//     order; integer values, or points of a cell arriving in time order,
//     are exact); a rebuilt cell that differs in the last bits from one
//     the replica holds is refused as a conflict and counted. This needs
//     the writes to come from write-back engines archiving to that
//     archive with that processor; other writes cannot be rebuilt.
//
// A replica refusing a cell for good during a replay (a conflict) cannot
// block its log: the batch is retried cell by cell, refused cells are
// skipped, counted (ReplicaStats.Conflicts) and logged.
//
// # Failover and fencing
//
// A monitor goroutine probes every replica each ProbeInterval with a cheap
// Cells read through the balancer's active health checks (Fall failures
// make a replica unhealthy, Rise passes healthy). When the primary is
// unhealthy, the healthy standby that is not stale and has applied every
// acknowledged write (the furthest ahead) is promoted: the epoch is
// incremented and persisted with the new primary before anything else,
// then every replica that answers is fenced at it. Fail-back is explicit:
// [Store.FailBack].
//
// A replica wrapped in [Fenced] (or any [Fencer]) keeps the newest epoch it
// has seen and refuses writes of older epochs with tsstore.ErrConflict
// wrapping [ErrFenced]. A Store that meets a newer epoch is fenced for
// good: its writes are refused, so a returning old primary (another Store
// with the stale view) cannot diverge the replicas that were fenced. A
// replica that was down during the promotion is fenced by the first check
// that finds it back, before its hints are replayed.
//
// A write refused as fenced while this Store's own epoch moved on (it
// promoted a replica while the write was on its way) is not taken for a
// newer writer: an applier retries it at the new epoch, and Write fails
// with tsstore.ErrUnavailable (retry).
//
// A stale writer at AckPrimary can still have writes acknowledged by an
// old primary that nobody has fenced yet (it was down during the
// promotion), until its first write reaches a fenced standby: fencing
// cannot reach a replica that does not answer. At AckPrimaryPlus(k) (and
// above) such writes are never acknowledged when the promotion fenced all
// but k replicas (the test shows it with three replicas at primary+1);
// the old primary may still hold the cells of that one refused write, as
// any store may after a failed write, and the write-back engine rewrites
// them through the current primary when it retries.
//
// # RPO and RTO
//
// Measured by BenchmarkFailover (three promtsdb replicas, a writer writing
// 100-cell batches without pause, the primary killed; ProbeInterval 50 ms,
// Fall 2; 2 shared cores):
//
//	ack level    lost acked writes   acked writes only in hints   RTO (kill → next ack)
//	primary      0                   50 to 75 (standby lag)       60 to 100 ms
//	primary+1    0                   0                            50 to 65 ms
//	all          0                   0                            until the dead replica returns
//
// RPO: the Store keeps every acknowledged write in the standbys' hint logs
// before it acknowledges, so with the Store alive no acknowledged write is
// lost at any level. If the Store's host dies together with the primary
// (embedded primary on the same machine), AckPrimary loses the writes the
// standbys had not applied yet (the lag above), plus on power loss what
// was appended to the hints within the last HintSyncInterval; AckPrimaryPlus,
// AckQuorum and AckAll lose nothing (each ack was applied on a standby).
// RTO: about Fall × ProbeInterval to detect, plus the catch-up of the best
// standby, plus one persisted epoch and the fencing; with the defaults
// (1 s, Fall 3) that is 3 to 4 s. After a failover a level that needs k
// standbys keeps accepting writes only with k standbys left (three
// replicas for primary+1); AckAll waits for the dead replica.
//
// # Throughput
//
// BenchmarkWrite writes the same 1,000-cell batches to a bare promtsdb
// store and to a Store over a promtsdb primary and a promtsdb standby in
// the same process, alternating blocks of 100 writes (the standby catches
// up between blocks), and checks that the standby ends with every cell. On
// the development machine (2 cores shared with other work) AckPrimary
// reaches 0.53 to 0.64 of the bare store's acknowledged cells/s (0.47 to
// 0.53 counting the standby's catch-up). The CPU profile says why it is
// not more: per write, the primary's Write costs what a bare Write costs,
// the standby's applier costs as much again for the same cells, the two
// TSDBs compact twice the data in the background, and the garbage
// collector scans two TSDB heads: the process needs about 2.2 times the
// CPU of the bare store, which alone keeps more than one core busy. The
// write path itself adds about 135 µs of CPU to a 670 µs primary Write
// (validation 55, encoding the hint record 45, its append and the copy
// kept for the applier 35; no lock is held against the applier). The
// sub-benchmark standby=elsewhere measures that: the standby's writes wait
// while a block is timed and run between blocks, as if the standby were
// another machine (as deployed); AckPrimary then reaches 0.86 of bare
// (165 µs of overhead per write).
//
// # Reads
//
// Query and Cells go through a balancer.StoreRouter to a healthy replica
// that is not stale and has applied every acknowledged write (so the
// write-back engine never misses a flushed cell), retrying on another after
// a retryable error. [WithMinSeq] sets the requirement explicitly
// (read-your-writes with the seq from WriteSeq; 0 allows any healthy
// replica).
//
// # Concurrency
//
// A Store is safe for concurrent use. Its goroutines (one applier per
// replica and the monitor) are stopped and waited for by Close. A Fenced
// is safe for concurrent use.
//
// # Errors
//
// tsstore.ErrInvalid for bad cells, queries and options (nothing written);
// tsstore.ErrUnavailable when the ack level was not met for availability
// reasons or no replica can serve a read; tsstore.ErrConflict when the
// primary refused a cell, or, wrapping ErrFenced, when a newer epoch fenced
// the Store; tsstore.ErrClosed after Close. Replica errors are wrapped
// with the replica's name.
package replicate
