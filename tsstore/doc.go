// Package tsstore is the data model of hourglass and the contract of its
// time-series stores.
//
// A [Point] is one raw observation (metric, [Labels], timestamp, value): what
// clients write and what the archive keeps forever. An [Agg] is a mergeable
// partial aggregate {Count, Sum, Min, Max}. A [Cell] is the Agg of the points
// of one series within one cell of time [Start, Start+width), produced by one
// flush of one writer (a write-back engine); its identity is (metric,
// labels, Start, Writer, Seq), where Seq numbers the writer's partials of
// the same cell (a late point after its cell was flushed becomes a new
// partial, never a rewrite). Partials of different writers never collide:
// stores keep them apart and queries sum them, so several servers may write
// the same merchant's series into one store.
//
// A [Store] keeps cells and answers bucketed aggregate queries ([Query],
// [Result]) and raw-cell reads ([Selector]) for the write-back cache's exact
// merge. Backends live in subpackages: memstore (the in-memory reference and
// test oracle), promtsdb (embedded Prometheus TSDB, the default), influx
// (InfluxDB). Every backend passes the conformance suite in storetest.
//
// Times are int64 milliseconds since the Unix epoch throughout (as in
// Prometheus); use [Millis] and [TimeOf] to convert.
//
// # Exactness
//
// Merging Aggs is associative and commutative. Count, Min and Max are exact
// in any merge order. Sum is exact whenever the values are integers (or
// fixed-point amounts such as cents stored as integers) whose partial sums
// stay below 2^53; otherwise it is exact up to floating-point rounding, which
// may differ in the last bits with the merge order.
//
// # Concurrency
//
// Values of the model (Labels, Point, Agg, Cell, Matcher, Query) are plain
// values: safe to read from many goroutines, not to mutate concurrently.
// Every Store implementation is safe for concurrent use.
//
// # Errors
//
// Every package of hourglass classifies its errors with the kinds defined
// here, to be tested with [errors.Is]: [ErrInvalid] (bad input, never
// retried), [ErrUnavailable] (a backend could not be reached; retryable),
// [ErrConflict] (a write contradicts what is stored), [ErrClosed] (use after
// Close) and [ErrBackPressure] (a bound was reached; retry later). Backend
// errors are wrapped together with their kind, never swallowed, so both
// errors.Is(err, tsstore.ErrUnavailable) and errors.As on the backend's own
// error type work.
package tsstore
