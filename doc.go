// Package hourglass is a Go library for the backend of a web analytics
// platform: merchants' clients write billions of events a day, millions of
// merchants read time-series metrics about their business.
//
// This package holds only documentation; the code is in its subpackages.
//
// # How data flows
//
//	clients ──▶ balancer (HTTP reverse proxy, merchant affinity)
//	              │
//	              ▼
//	      app server ──Write──▶ writeback.Engine ──ack──▶ client
//	              │                 │  cache: localcache (memory + WAL) or rediscache
//	              │                 │  every 45 min (±5 %), within a 15 min budget:
//	              │                 ├──cells──▶ replicate.Store ──▶ tsstore.Store (promtsdb, influx)
//	              │                 └──raw points──▶ archive (dirarchive, s3archive), never deleted
//	              │
//	      app server ──Query──▶ writeback.Engine: store for old time, exact merge of
//	                            cache, peers' caches and store cells (by identity,
//	                            writer-scoped) for recent time
//
//	archive ──▶ reprocess (new Processor) ──▶ new store version ──diff──▶ atomic switch
//
// # Packages
//
//   - tsstore: the data model (Point, Agg, Cell, Query, Result), the Store
//     interface and the error kinds every package uses. Start reading here.
//   - tsstore/memstore: the in-memory reference Store, the oracle in tests.
//   - tsstore/storetest: the conformance suite every Store backend passes.
//   - tsstore/promtsdb: the default store, embedded Prometheus TSDB.
//   - tsstore/influx: InfluxDB.
//   - tsstore/promremote: any Prometheus remote-write engine (VictoriaMetrics
//     cluster, Mimir, Thanos, Prometheus), for a store beyond one machine.
//   - tsstore/archive: the permanent archive of raw points (Parquet),
//     with dirarchive (local files) and s3archive (object storage).
//   - writeback: the write-back engine; localcache and rediscache are its
//     caches; peerhttp lets servers with local caches read each other's.
//   - replicate: a Store over a primary and standbys, with hints and failover.
//   - balancer: load-balancing policies, health checks, HTTP reverse proxy.
//   - reprocess: re-running processing logic over archived history.
//   - httpapi: the HTTP layer of an analytics server (ingest endpoints,
//     token auth, rate limits, the query API), to mount in a program's mux.
//   - httpapi/promapi: the Prometheus HTTP API (PromQL) over the engine's
//     merged view, per merchant, for Grafana, promtool and client_golang.
//   - examples/server, examples/loadgen: an analytics server and its load
//     generator.
//
// The design (data model, write, flush and read paths, invariants and how
// they are tested, departures from the original plan) is described in
// docs/design.md in the repository:
// https://github.com/hourglass-io/hourglass/blob/main/docs/design.md. The
// README has a quick start.
package hourglass
