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
package main
