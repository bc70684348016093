// Package dirarchive is the archive backend on a local (or mounted) file
// system: github.com/hourglass-io/hourglass/tsstore/archive.Archive over a
// directory.
//
// # Layout
//
//	<dir>/manifest.jsonl                   append-only manifest, one JSON line per segment
//	<dir>/YYYY/MM/DD/HH/<name>.parquet     segments, by the hour of their MinTime (SegmentID.Name)
//	<dir>/.lock                            flock(2)ed by a process while it commits a segment
//	<dir>/.tmp/<process>/                  segments being written by a live process
//
// A segment is an Apache Parquet file (zstd-compressed; columns time as a
// millisecond timestamp, metric, labels as a MAP<string,string>, value
// byte-stream-split) in which points are sorted by time; any Parquet
// reader of BYTE_STREAM_SPLIT (format 2.8: DuckDB, Spark, Trino, Arrow)
// can read <dir>/**/*.parquet. The schema is described in the package
// tsstore/archive/internal/segment, shared with the other backends.
//
// # Durability
//
// Append encodes the segment into a temporary file, fsyncs it, then, holding
// the directory's lock, links it to its final name with link(2) (which never
// replaces an existing file), fsyncs the segment's directory (and the
// directories it created), appends the segment's record (size, SHA-256 of
// the file, digest of its points) to the manifest in one write and fsyncs
// the manifest. Only then does Append return, and only segments listed in
// the manifest are visible to Segments, Read, Scan and Stat. A crash at any
// point leaves either a complete, listed segment, or nothing visible: a
// leftover temporary file (removed by the next Open), a linked but unlisted
// file (adopted by the next Append of that name when its points are the same,
// otherwise renamed aside to <name>.orphan-<unix ns>; it is never removed),
// or a torn last manifest line (ignored, and cut by the next writer).
//
// Read and Scan check every segment they open against its record (size and
// SHA-256) before decoding it, and the decoded points against the record
// (count, order, time range). A missing, truncated or corrupt segment fails
// the call with an error of kind archive.ErrCorrupt naming the segment; it
// is never skipped.
//
// There is no delete.
//
// # Concurrency
//
// An *Archive is safe for concurrent use by goroutines. Several processes
// (or several Archives in one process) may open the same directory at once:
// commits are serialised by flock(2) on <dir>/.lock, and each process picks
// up the others' segments from the manifest before every call, so the
// archive behaves as one. This relies on flock(2) and link(2) working, as on
// a local Unix file system; on a network file system without them, link(2)
// still never overwrites a segment, but the manifest may then receive two
// records of one name. Different directories are independent (there is no
// global state), so one flush may write two archives, say for two regions.
// Close waits for the calls in progress; calling it from a Scan or Read
// callback of the same archive deadlocks.
//
// # Errors
//
// Invalid ids, points or ranges fail with tsstore.ErrInvalid; a name that
// exists with other points with tsstore.ErrConflict; a segment that does not
// match its record with archive.ErrCorrupt; a name that is not in the
// archive (Read) with tsstore.ErrInvalid and archive.ErrNotFound; file
// system failures with tsstore.ErrUnavailable; use after Close with
// tsstore.ErrClosed; a cancelled context with its error. An error returned
// by the callback of Read or Scan is returned as it is.
//
// The package works on Unix systems (it uses flock(2)).
package dirarchive
