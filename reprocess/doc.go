// Package reprocess re-runs processing logic over archived history into a
// new store version, compares it with the live store, and switches reads
// to it atomically. The archive keeps every raw point, so a bug in a
// tsstore.Processor is fixed without deleting anything: the old figures stay
// in the live store and in older versions, and switching back is a
// rollback.
//
// # Workflow
//
//  1. Deploy the fixed processor in the live writeback.Engine, whose
//     store is a [Switchable] over the live store.
//  2. Choose a cell-aligned cut-over at least the live engine's MaxFuture
//     after the deployment (every point after it was processed by the
//     fix), flush the live engine so that every point before it is
//     archived, and [Versions.Run] a [Job] over
//     [From, Cutover): it reads the archive's segments of the range,
//     merged in time order, and feeds the points through a writeback engine with the fixed processor (the
//     cache's aggregation, not a second copy of it) into a new promtsdb
//     directory, never the live store. Its lineage records the processor
//     version and the archive segments read, with their checksums.
//  3. [Compare] the version with the live store (a [Diff]: series changed,
//     added, removed, the largest differences; JSON-encodable). A dry run
//     stops here.
//  4. [Switchable.Switch] to the version: reads of [From, Cutover) come
//     from it, the rest from the live store, where writes keep going.
//  5. Until the live engine's MaxLate has passed since the cut-over, late
//     points of the range still arrive (in the live store, where reads of
//     their time do not look, and in the archive): run
//     [Switchable.CatchUp] after live flushes, which adds the archive's
//     new segments of the range to the version as new partials, once.
//
// For an InfluxDB deployment the analogue of a version directory is a new
// bucket (or a measurement prefix) that a job writes through the influx
// store; Switchable's routing is the same over any tsstore.Store.
//
// # Checkpoints
//
// A job cuts its input into chunks of about ChunkPoints points, always at
// a cell boundary of the time-ordered merge; each chunk goes to one of two
// engines in turn (one fills while the other flushes), and a checkpoint
// (the time before which every point is in the version) is written after
// each chunk's flush. An interrupted job (crash, kill, cancelled
// context) run again resumes from the checkpoint with a fresh cache, and
// the version ends up with the same cells as an uninterrupted run: each
// cell is aggregated within one run from the same points in the same
// order, and written with a fixed identity (Writer [VersionWriter], the
// legacy writer "", and Seq 0, whatever the writer id and generation
// numbers of the job's fresh caches), so cells rewritten after the
// checkpoint are identical no-ops. This needs every point the processor
// derives to lie in its raw point's cell (checked; a processor that moves
// points across cells fails the job with tsstore.ErrInvalid).
//
// # Why promtsdb.Store and not the TSDB block writer
//
// A version is written through promtsdb.Store, in time order (its fast
// path: no read-back), not with tsdb.BlockWriter as promtool's backfill
// does. BenchmarkVersionWrite loads the same million time-ordered cells
// both ways: on the 2 shared cores of the development machine the Store
// took 124k cells/s and the block writer 117k cells/s including its Flush
// (the head's appends dominate both; the WAL the block writer saves is
// cheap). The Store also brings the conflict checks, a directory any
// reader opens as it is, and resumption without overlapping blocks.
//
// # Concurrency
//
// [Versions], [Switchable] and [Metrics] are safe for concurrent use. A
// job runs in the calling goroutine; one version's job must not run twice
// at once (its store directory is locked by promtsdb).
//
// # Errors
//
// Bad jobs, ids and queries fail with tsstore.ErrInvalid; a version made
// with other parameters, or an archive whose segment list of the range
// changed during the job, with tsstore.ErrConflict; file system failures
// with tsstore.ErrUnavailable; a closed Switchable with tsstore.ErrClosed.
// Errors of the archive, the engine and the stores are wrapped.
package reprocess
