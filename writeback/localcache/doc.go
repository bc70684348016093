// Package localcache is the embedded writeback.Cache: cells in sharded
// in-memory maps, raw points in a write-ahead log with one file per
// generation (dir/<generation>.wal).
//
// Each batch is one log record: a length, a CRC-32C and the encoded raw
// points (and the processed points unless they are the raw ones), each
// section with a table of its strings, label sets and series, so that a
// point is its series' index, a timestamp delta and a value (about 10
// bytes in issue 19's workload, against 50 when every point carried its
// metric and labels; records of that first version still replay). A
// record is written with one write(2) at the end of the open generation's
// file, and the batch is merged into the cells under the same generation
// lock, so log and cells always hold the same batches. Open replays every
// file, merging each record per series: the last generation is open
// again, the others are sealed and wait for the engine's flush. A torn
// record at the end of the open file (a crash during a write) is cut off;
// corruption elsewhere, or a record of a version this code does not know,
// fails Open, naming the file.
//
// The flush reads a sealed generation's raw points back with SealedLog,
// or as tsstore.Columns with SealedColumns, which copies little more than
// each point's series index, timestamp and value.
//
// dir/WRITER keeps the cache's writer id (writeback.Cache.WriterID), made
// once when a directory has none and written atomically (a temporary file,
// fsync, rename, fsync of the directory). dir/QUARANTINE is the quarantine
// (writeback.QuarantineCache): an append-only log of records framed like
// the write-ahead log's (length, CRC-32C, payload), each fsynced, adding
// refused cells with their reasons or releasing resubmitted ones; a torn
// record at its end is cut off, and it is rewritten atomically once most
// of its records are dead.
//
// Fsync policies: FsyncInterval (default; group commit every 100 ms, a
// machine crash loses at most that window, a process crash nothing),
// FsyncAlways (acknowledge after the fsync covering the write, shared by
// concurrent writers), FsyncNever. Sealing always fsyncs the sealed file.
// Per write, writeback.DurabilitySynced asks for an fsync whatever the
// policy.
//
// # Concurrency
//
// A Cache is safe for concurrent use. Appends run in parallel except for
// the log write itself; Seal and Commit wait for appends in flight. Only
// one process may open a directory (flock on dir/LOCK).
//
// # Errors
//
// Log write and fsync failures are tsstore.ErrUnavailable; a directory in
// use by another process is tsstore.ErrUnavailable; use after Close is
// tsstore.ErrClosed.
package localcache
