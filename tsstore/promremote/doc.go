// Package promremote is a tsstore.Store on any engine that takes the
// Prometheus remote-write protocol and answers the Prometheus HTTP API:
// VictoriaMetrics (single node or cluster), Mimir, Cortex, Thanos Receive,
// and Prometheus itself. These are the open-source engines that spread a
// time-series store over many machines with replication, for when one
// machine's store (promtsdb) is not enough.
//
// # Mapping
//
// As in promtsdb, a cell of metric m becomes one sample in each of four
// series, m:count, m:sum, m:min and m:max, labelled with the cell's labels
// plus __name__, at the timestamp Start+Seq (ms). The cell's writer is the
// label __writer__, absent for the legacy writer "": users can never write
// labels starting with __, so the mapping is injective. Both
// VictoriaMetrics and Prometheus keep __writer__ through remote write and
// return it from export and query (checked by the tests). Options.
// ExternalLabels are added to every series and required on every read
// (several deployments or store versions on one engine). Results never
// show __writer__ or the external labels.
//
// Writes are remote write 1.0: a snappy-compressed prompb.WriteRequest
// with Content-Encoding: snappy and X-Prometheus-Remote-Write-Version:
// 0.1.0, at most Options.BatchSize cells per request. Reads fetch the raw
// samples of a selector and join the four samples of each timestamp back
// into a cell (Seq = timestamp - Start): through /api/v1/export (JSON
// lines) where the engine has it (VictoriaMetrics), else through an
// instant query of a range selector on /api/v1/query. Query aggregates
// the cells here with tsstore.NewResultBuilder, so partials are summed
// exactly, as in memstore; no PromQL function touches the values.
//
// # Writes, duplicates and conflicts
//
// No engine refuses a second value for a stored timestamp reliably
// (VictoriaMetrics keeps both, or the larger with -dedup.minScrapeInterval;
// Prometheus' receiver drops it behind a 2xx), so Write checks before it
// sends, as tsstore/influx does: it remembers, per series it has written
// since Open, an upper bound of the stored sample times; cells after it
// are sent at once, the others (and the first cells of a series in this
// process) are read back first, one read per metric and group of up to
// 32 series. An identical rewrite is a no-op, a different aggregate fails
// the whole batch with tsstore.ErrConflict before anything is sent. Values
// are compared to the precision the engine keeps: VictoriaMetrics stores
// a float as a decimal mantissa and exponent, and about 12 significant
// digits survive (Options.RelativeTolerance, 1e-12 relative when reading
// through export); Prometheus keeps float64 exactly. The same precision
// applies to what Cells returns: integers (counts, and sums of integer
// values) come back exact. The bounds assume that each series has one
// writer, which writer-scoped cells guarantee.
//
// # Read-your-writes
//
// After Write returns, Cells and Query see the cells, so the write-back
// engine never drops a generation from its cache before its cells are
// readable here. Engines hide their newest samples in different ways:
// VictoriaMetrics buffers incoming rows for up to a few seconds (measured:
// about 4 s on v1.151.0) before they are searchable, so Write ends with a
// GET of /internal/force_flush (found at Open for a single node; for a
// cluster, list every vmstorage's in Options.FlushURLs). Export reads raw
// samples, so VictoriaMetrics' -search.latencyOffset and its rollup result
// cache (-search.disableCache) do not hide anything from this Store; they
// matter only to PromQL clients of the same engine. Prometheus, Mimir and
// Thanos Receive make a sample queryable when the write request returns.
// Where neither holds, Options.SettleDelay waits after every Write.
//
// # Required engine settings
//
// Open reads the settings it can reach (VictoriaMetrics' /flags at the
// read URL's root, Prometheus' /api/v1/status/config) and fails with
// tsstore.ErrInvalid when one breaks the contract; the others are the
// operator's to set:
//
//	engine                  setting                                   why                                     checked at Open
//	VictoriaMetrics         -retentionPeriod beyond the late window    older rows are dropped behind a 2xx     yes (Options.LateWindow, 7 days)
//	                        -futureRetention beyond MaxFuture          newer rows are dropped behind a 2xx     read (2 days without the flag)
//	                        -search.maxExportDuration                  the longest export                      read span lowered to it
//	                        -dedup.minScrapeInterval=1ms (advised)     a retried request stored once           no (reads tolerate duplicates)
//	                        -search.latencyOffset, -search.disableCache  (none: export ignores them)    no
//	VictoriaMetrics cluster Options.FlushURLs (each vmstorage's        rows searchable only after seconds      yes (fails without either)
//	                        /internal/force_flush) or SettleDelay
//	Prometheus              --web.enable-remote-write-receiver         the write endpoint                      (writes fail with 404)
//	                        out_of_order_time_window beyond the        late cells are refused                  yes
//	                        late window (7d)
//	                        --storage.tsdb.retention.time              old blocks are deleted                  no
//	Mimir, Cortex           out_of_order_time_window beyond 7d;        late cells are refused                  no
//	                        X-Scope-OrgID in Options.Headers
//	Thanos Receive          --tsdb.out-of-order.time-window beyond 7d  late cells are refused                  no
//
// On a cluster the retention flags live on vmstorage, which Open cannot
// read through vmselect: set them as above. With VictoriaMetrics' retention
// read at Open, Write refuses a cell
// outside [now - retentionPeriod, now + futureRetention] with
// tsstore.ErrInvalid instead of letting it vanish behind a 2xx.
//
// URL shapes: a VictoriaMetrics single node writes to
// http://vm:8428/api/v1/write and reads below http://vm:8428/; a cluster
// writes to http://vminsert:8480/insert/<tenant>/prometheus/api/v1/write
// and reads below http://vmselect:8481/select/<tenant>/prometheus/; Mimir
// writes to http://mimir/api/v1/push and reads below
// http://mimir/prometheus/, with X-Scope-OrgID.
//
// # Performance
//
// BenchmarkWrite writes 10,000 cells per Write (the engine's flush chunk)
// to a VictoriaMetrics single node, interleaved with a bare remote-write
// client posting the same samples in requests of the same size (no
// conflict check, no force flush). On a 2-core machine shared with other
// work, three runs of 50 iterations gave the store 0.83, 0.93 and 1.01
// times the bare client's cells/s (59,422 vs 71,477; 18,990 vs 20,403;
// 50,745 vs 50,429): the goal is at least 0.8. Without the force flush
// the ratio was 0.96; the flush is most of the difference, and it is what
// makes a write readable at once. BenchmarkEngineFlush flushes the
// write-back engine after an ingest of 120,000 cells: 41,157 cells/s into
// VictoriaMetrics against 303,003 into memstore (the engine's own cost).
//
// # Concurrency
//
// A Store is safe for concurrent use. Writes that touch the same series
// are serialized (64 lock stripes by series hash); reads do not lock.
//
// # Errors
//
// Errors are of the kinds in tsstore: ErrInvalid for bad cells and
// queries (naming the offending cell or field), for cells outside
// VictoriaMetrics' retention, and for a write request the engine refuses
// with a 4xx (naming the series); ErrConflict for a stored
// identity written with a different aggregate, naming the cell;
// ErrUnavailable for connection errors, 5xx and 429 after
// Options.MaxRetries retries with backoff, for 401, 403 and 404 (a wrong
// URL or credentials is the deployment's to fix, not the cell's), and for
// every failed read (the Store builds its reads itself);
// ErrClosed after Close.
package promremote
