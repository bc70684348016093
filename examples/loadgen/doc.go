// Command loadgen drives the design brief's workload against the example
// server (examples/server): many merchants, two writes for every read, writes
// being batches of a realistic event mix (page views, orders, refunds), reads
// being dashboard queries of the last hour. It shows a progress line on stderr
// and prints throughput and latency percentiles (p50, p99, max) of writes and
// reads.
//
//	go run ./examples/server &
//	go run ./examples/loadgen -duration 30s
//
// It reads the admin token from the server's tokens file (-tokens, default
// ./data/tokens.json, or -admin-token) and issues one merchant token per
// simulated merchant with POST /v1/admin/merchants. It only sends traffic to
// a loopback address.
//
// With -queue it sends the same workload over RabbitMQ instead, to a server
// started with -amqp-url: each write is one batch of raw event points
// published with writeback/amqpsource's Publisher (publisher confirms on:
// a write's latency ends with the broker's confirm), each read a query sent
// with amqpsource's Client and answered on the reply-to queue.
//
//	go run ./examples/server -amqp-url amqp://guest:guest@127.0.0.1:5672/ &
//	go run ./examples/loadgen -queue amqp://guest:guest@127.0.0.1:5672/ -duration 30s
//
// "loadgen bench" is the ingest comparison of the README's performance
// section (scripts/bench-ingest.sh runs it): the same line-protocol batches
// to the server's /write, InfluxDB's and VictoriaMetrics', then the same
// dashboard query to each; with -events, the same workload to the server's
// /v1/events too, as JSON page_view events (one per line, one point where a
// line makes two), a row of its own; with -sustain, full-speed ingest into
// the server while its flushes run, with the flushes' share of the time,
// the cache's peak and the server's peak RSS.
package main
