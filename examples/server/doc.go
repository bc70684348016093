// Command server is the example analytics server of hourglass: merchants'
// clients write events over HTTP, a versioned processor turns them into
// metrics (orders, revenue, refunds, views), a writeback.Engine acknowledges
// them once they are in its cache and flushes them to a time-series store and
// an archive of the raw events, and merchants read their metrics back.
//
//	go run ./examples/server              # embedded defaults under ./data, on :8080
//	go run ./examples/server -help        # every flag and its environment variable
//	go run ./examples/server lb -backends http://127.0.0.1:8081,http://127.0.0.1:8082
//
// On its first start the server creates ./data/tokens.json (mode 0600) with a
// signing secret, an admin token and a demo merchant's token, and prints
// ready-to-paste curl lines. The HTTP API is described in openapi.yaml and in
// the repository's README.
//
// This package is flags and wiring: the ingest and query endpoints, token
// authentication and rate limits are package httpapi, mounted next to the
// server's own admin endpoints, health checks and /metrics. What is the
// example's own is its shop: the event format of /v1/events (order, refund,
// page_view: events.go) and the processors that turn events into metrics
// (events/1, events/2: processor.go).
//
// # Tokens
//
// A merchant token is "hg_<merchant>_<signature>", the signature an HMAC-SHA256
// of the merchant id under the secret of the tokens file: it is bound to its
// merchant, checked in constant time, and every server that shares the tokens
// file accepts it (which the balancer mode relies on). POST
// /v1/admin/merchants issues one. Rotating the secret revokes every token.
//
// # Isolation
//
// The merchant of a request is the one its token names. Ingested points get
// the label merchant=<that merchant> (a different merchant tag in line protocol
// is refused); queries always carry the matcher merchant=<that merchant>, so a
// merchant reads and writes only its own series, whatever its label filters
// or group-by.
//
// # Reprocessing
//
// The admin endpoints under /v1/admin/reprocess run package reprocess: a job
// re-reads the archive of a time range through a chosen processor version
// (processors, such as events/2) into a new store version, or, as a dry run,
// into a version of a separate catalog that never serves reads; its progress
// and its diff against what reads serve are kept; a switch makes the
// reprocess.Switchable in front of the live store serve the version's range
// from it. Jobs run in the background and stop, resumable, at shutdown.
//
// # Replicas
//
// With -replicas N (and -standby-influx-urls) the store is a replicate.Store
// over the primary and the standbys, each behind a replicate.Fenced, at the
// ack level -ack. A local replica without its fence file (new, or lost) is
// rebuilt as a copy of the primary before anything opens it.
//
// # Several servers, one store
//
// Servers that share a store (InfluxDB, or a remote-write engine) may all
// receive a merchant's writes (the balancer prefers one, but ejections and
// restarts move merchants). Each server's cache has a writer id, printed at
// start and returned by POST /v1/admin/flush, which every cell it stores
// carries: the store keeps the servers' partials apart and sums them. A
// cell the store refuses for good is quarantined instead of halting
// flushes: GET /v1/admin/quarantine lists such cells with the store's
// reason, POST /v1/admin/quarantine/resubmit writes them again, and
// /metrics counts them (hourglass_writeback_quarantined_cells_total, and
// the gauge hourglass_writeback_quarantined_cells).
//
// # Shutdown
//
// SIGTERM or SIGINT stops accepting connections, lets the requests in flight
// finish, closes the engine (which flushes the cache to the store and the
// archives) and then the cache, the store and the archives. A write that was
// answered 2xx is in the cache's log before the answer, so a crash loses
// nothing acknowledged either: the next start replays the log.
package main
