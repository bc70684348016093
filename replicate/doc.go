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
// number, appends it to the hint log of every standby (one append, no
// fsync, under one lock that fixes the order), writes it to the primary
// directly, and returns when the ack level ([Options.Ack]) is met:
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
// range they covered (write seqs, cell time range, metric names) persisted
// in Dir/state.json. When it answers again, it is re-synced: the cells of
// those metrics in that time range are copied from a healthy replica that
// has applied those writes (the primary first) with Cells and Write. This
// is cell-exact. Re-syncing from the archive instead would mean
// re-aggregating raw points into cells, which gives the same cells only if
// the flush generations (the Seq layout) are reproduced: that is a
// reprocess-style rebuild (package reprocess), not a copy, and is not done
// here. A replica is never read while stale.
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
