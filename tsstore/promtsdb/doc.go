// Package promtsdb is the default tsstore.Store: an embedded
// github.com/prometheus/prometheus/tsdb database in a local directory, with
// no server to run.
//
// # Mapping
//
// A cell of metric m becomes one sample in each of four series,
// m:count, m:sum, m:min and m:max, labelled with the cell's labels plus
// __name__ and, unless the cell's writer is the legacy writer "", the label
// __writer__ (tsstore.WriterLabel) = the writer, at the timestamp
// Start+Seq (ms). Queries select the four series with the label matchers
// pushed down to the TSDB's index and bucket their samples in one pass,
// summing the series that differ only in __writer__ (which never shows in
// a result); Cells joins the four samples of each timestamp back into a
// cell (Seq = timestamp - Start, Writer = the __writer__ label or ""). Any
// Prometheus tool that reads a TSDB directory sees the cells as ordinary
// series (sum without(__writer__) merges the writers).
//
// The writer is a label because a writer's partials then are series of
// their own: every check below (in-order head, out-of-order head, blocks,
// after a reopen) holds per writer by construction, with no change to the
// TSDB's layout. Its name starts with "__", which no label of a point may
// (tsstore reserves those names), so it cannot collide with a user's
// label. It is absent for the legacy writer so that directories written
// before cells had writers read unchanged, as writer "", and new writers'
// partials of the same cells add up with them. A matcher on __writer__
// sees "", as on any label a cell does not have.
//
// # Writes, duplicates and conflicts
//
// The TSDB itself accepts a different value for an existing timestamp in
// some cases and drops it silently in others (an out-of-order sample whose
// timestamp exists, a sample already compacted to a block). The Store
// therefore checks before it appends: it remembers, per series and writer
// it has written, an upper bound of the stored timestamps; a cell above
// that bound is appended directly (the common case of a flush), a cell at
// or below it is read back first (one querier per Write). An identical
// rewrite is a no-op; a different aggregate for a stored identity (the
// same writer's) fails with tsstore.ErrConflict and nothing of the batch
// is appended; another writer's partial of the same cell is another
// identity. The first write of a series (and writer) in a process reads
// its stored samples from the cells' time onwards once. This remembered
// state costs memory per series and writer written since Open. Writing to
// the DB returned by [Store.As] bypasses these checks.
//
// The TSDB accepts samples older than its newest sample only within the
// out-of-order window ([DefaultOutOfOrderWindow], 7 days): a cell older
// than the newest stored sample minus the window fails with an error of
// kinds tsstore.ErrInvalid and [ErrTooOld]. The newest sample is the
// largest timestamp ever written, not the wall clock, so one cell far in the
// future makes every present cell too old.
//
// # Durability
//
// Write returns after the TSDB's Commit, which has written the samples to
// the write-ahead log (out-of-order samples to the write-behind log) with a
// write(2) to the log file. An acknowledged write therefore survives a crash
// of the process (kill -9): Open replays the log.
//
// tsdb v0.316.0 alone does not keep that promise for out-of-order samples:
// killed during an out-of-order compaction, it can come back without
// acknowledged out-of-order samples that are in its write-behind log (seen
// in TestCrashRecovery in a few runs of ten on a loaded machine; in-order
// samples were never lost). The Store therefore also logs the late cells
// of each Write (those the TSDB takes out of order: below their series'
// newest sample, or more than an hour behind the newest sample of the
// whole database) in its own redo log (with their writers),
// dir/redo, after the Commit and before it returns, and Open rewrites them
// (a cell still stored is an identical rewrite, a no-op). A redo segment is
// deleted once an out-of-order compaction has put its cells in a block.
// A flush of on-time cells logs nothing.
//
// The TSDB fsyncs its log
// only when a segment (128 MiB by default) is full and on Close, not per
// commit, and offers no option to do so: a power loss or kernel crash can
// lose acknowledged writes since the last segment boundary. hourglass's
// write-back cache keeps raw points in its own log and the archive until a
// flush has been written, which covers this for the data it flushes.
//
// Data is never deleted by default (no retention); compaction merges blocks
// up to [DefaultMaxBlockDuration].
//
// # Concurrency
//
// A Store is safe for concurrent use. Writes that touch the same series
// are serialized (64 lock stripes by series hash), and the append and
// commit phase of every Write runs one at a time, because tsdb v0.316.0
// races when appenders create series concurrently while a query reads
// (prometheus/prometheus#15317); queries do not lock.
//
// # Errors
//
// Errors are of the kinds in tsstore: ErrInvalid for bad cells and queries
// (naming the offending cell or field) and for cells older than the
// out-of-order window (also [ErrTooOld]); ErrConflict for a stored identity
// written with a different aggregate, naming the cell; ErrUnavailable for a
// failure of the TSDB (wrapped); ErrClosed after Close.
package promtsdb
