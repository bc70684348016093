// Package influx is a tsstore.Store on InfluxDB, written through
// github.com/influxdata/influxdb-client-go/v2 and queried in InfluxQL (the
// default) or Flux.
//
//	s, err := influx.Open("http://localhost:8086", &influx.Options{Database: "hourglass"})
//
// # Data model
//
// Each cell is one point: measurement = metric, one tag per label, the tag
// __writer__ (tsstore.WriterLabel) = the cell's writer unless it is the
// legacy writer "", fields count (integer), sum, min and max (floats),
// timestamp Start+Seq in milliseconds. Partials of a cell therefore are
// distinct points (Seq is below the cell width in ms; different writers
// are different series), and a point's cell is its time rounded down to
// the cell width.
//
// The writer is a tag because InfluxDB keeps points of different tag sets
// apart however equal their times, and sums them in one aggregation when
// the query does not group by the tag. Its key starts with "__", which no
// label name does, and no label maps to it (the reserved names below
// become "__" + name, and "writer__" is not one of them), so it cannot
// collide with a label; writer names ([a-zA-Z0-9_.:/-]) need no escaping.
// InfluxDB 1.6 (the test server) accepts such a tag key, as it does the
// "__" + name keys of reserved label names. It is absent for the legacy writer so that points written before cells had
// writers read unchanged, as writer "", and new writers' partials of the
// same cells add up with them. Results never show the tag: Cells returns
// it as Cell.Writer, queries sum over it, and a matcher on it sees "" as
// on any label a cell does not have.
//
// Label names that InfluxDB or Flux reserve or that would be ambiguous
// (time, count, sum, min, max, result, table, _field, _measurement, _start,
// _stop, _time, _value) are stored as the tag key "__" + name; tsstore
// reserves label names starting with "__", so the mapping is reversible.
//
// Label values go into tags escaped as line protocol requires (commas,
// equals signs and spaces get a backslash). Line protocol cannot carry a
// newline in a tag, and InfluxDB versions read backslashes (a trailing one
// in particular) differently, so a value that contains a backslash or any
// control character (bytes below 0x20 and 0x7f), or that starts with the
// marker "%%hg:", is stored as "%%hg:" followed by the value with those
// bytes and '%' written as %XX (percent-encoding). The store decodes such
// values when it reads, so every UTF-8 value round-trips exactly; other
// readers of the database see the encoded form.
//
// Times: InfluxDB stores int64 nanoseconds, so cells whose point would lie
// after 2262-04-11 are rejected with ErrInvalid; query ranges are clamped.
//
// # Writes
//
// Points are encoded by this package and sent in batches of
// Options.BatchSize, gzip-compressed by default, either through
// influxdb-client-go's blocking write API to /api/v2/write (WriteV2, the
// default; 2.x, Cloud, 3.x and 1.8+, where the bucket "db/rp" maps onto a
// database and retention policy) or with net/http to the 1.x /write
// endpoint (WriteV1, for servers older than 1.8). A request that fails
// with a connection error, 429 or 5xx is retried up to Options.MaxRetries
// times with exponential backoff and jitter, waiting as long as a
// Retry-After header asks instead when there is one. The client's blocking
// API does not retry by itself; the retries are this package's.
//
// # Conflicts and idempotency
//
// InfluxDB silently overwrites a point written again with the same series
// and time, so conflict detection is the store's. A cell stored with the
// same aggregate is skipped (a retried flush is a no-op); one stored with a
// different aggregate fails the batch with ErrConflict before anything is
// written.
//
// As tsstore/promtsdb does, the Store remembers, per series (metric and
// labels) and writer it has written since Open, an upper bound of the
// times of the stored points of the series and writer. A cell whose point (Start+Seq) lies after its
// series' bound cannot collide with a stored point and is written without
// any read: this is the common case of a flush, whose cells are newer than
// the last flush's. The first write of a series in a Store establishes the
// bound with one read, the newest stored point of the series from the
// write's earliest cell on (per metric, one InfluxQL statement per 32
// series, all in one request); every write then raises it, before sending,
// so that it stays an upper bound even when a write fails half-way.
//
// Cells at or before their series' bound (rewrites, late cells) are checked
// by reading: per metric and cluster of nearby times the store first probes
// the range for any point (one statement with LIMIT 1, naming up to 32
// series in its WHERE clause; all probes in one request), and reads the
// points of the ranges that have some. The read costs InfluxDB little for
// cold data, but reads of points still in InfluxDB's write cache are
// expensive (about as long as the write itself in BenchmarkWrite), which is
// why the bounds exist.
//
// The bounds take memory: about 100 bytes plus the series key per series
// and writer, for at most Options.MaxTrackedSeries of them (DefaultMaxTrackedSeries,
// spread over 64 stripes by series hash). A new series in a full stripe
// evicts an arbitrary one, whose next write is checked by reading and reads
// its bound again; a negative MaxTrackedSeries keeps no bounds and checks
// every cell by reading. Options.SkipConflictCheck removes the check
// altogether, and with it the protection.
//
// The bounds and the check rely on one Store per writer: each write-back
// engine has a writer id of its own, and the writers' points are distinct
// InfluxDB series, so several servers may write the same merchant's cells
// into one database. A bound only knows the points that existed when it
// was read and those this Store wrote since: points another Store or
// process writes later as the same writer, at times after the bound, are
// not seen, and a cell of this Store at such a time silently replaces
// them. Even without bounds the check and the write are not atomic on the
// server: within one Store, writes of the same series are serialized
// (striped locks on the series), so they cannot race; but two Stores that
// write the same cell identity (writer included) at the same moment can
// both find it absent, and the later write then silently replaces the
// earlier one instead of failing with ErrConflict.
//
// The conflict check reads through InfluxQL even when QueryLanguage is Flux.
//
// # Queries
//
// InfluxQL (over /query, POST, chunked answers, epoch=ms) quotes every
// identifier in double quotes and every string in single quotes; regexp
// matchers (RE2, anchored at both ends as in tsstore) become
// /^(?s:re)$/ literals with '/' escaped. Matchers are pushed down only as a
// superset of the wanted series (those that also select series without the
// label, such as x!="a", are not pushed down at all, and stored encoded
// values are always let through a regexp), and the store then applies every
// matcher exactly to the decoded labels, with Prometheus' semantics for
// missing labels.
//
// Bucketing follows tsstore.ResultBuilder exactly: a cell belongs to the
// bucket that holds its Start, not its point's time. When every matcher is
// an equality with a non-empty value (InfluxDB then selects exactly the
// wanted series) and the step is wider than a cell, InfluxDB aggregates
// (SUM of counts and sums, MIN, MAX; GROUP BY time(step, offset) with the
// offset that puts bucket edges on the cells' boundaries, which is exact
// because steps are multiples of the cell width, and the group-by tags,
// which sums the writers' series; without group-by labels, GROUP BY *
// returns each writer's series and the store adds up those with the same
// labels). Otherwise the store reads the cells' points and aggregates them
// itself. A matcher on the writer tag is never pushed down.
//
// With QueryLanguage Flux, the store sends a Flux query through the
// client's QueryAPI (/api/v2/query) and reads the unpivoted annotated-CSV
// answer, joining each point's four field records; it always aggregates
// itself. Both languages give the same results.
//
// # Concurrency
//
// A Store is safe for concurrent use. It has no background goroutines;
// Close waits for the calls in flight.
//
// # Errors
//
// Errors are of the kinds in tsstore: ErrInvalid for bad cells and queries
// and for a batch the server rejects with 400 (the error names the
// rejected cell and its line when the server's message allows, such as a
// field type conflict with points written by others); ErrUnavailable for
// connection errors, 5xx (after the retries) and other server answers
// (401, 404 database not found); ErrConflict as above; ErrClosed after
// Close. Cancellation returns the context's error.
package influx
