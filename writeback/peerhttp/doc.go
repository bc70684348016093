// Package peerhttp lets the servers of a cluster read each other's cached
// cells over HTTP, so that a query through any server merges what every
// live server holds (writeback.Peers) when each server has its own cache
// on its own disk (localcache).
//
// Handler serves an engine's cached cells (writeback.Engine.CachedCells)
// for a selector at Path; Client is a writeback.Peers over a list of peer
// base URLs, asking them all at once, each within Client.Timeout.
//
// # Authentication
//
// The endpoint is internal: a request must carry "Authorization: Bearer
// <Token(secret)>", a token derived from the cluster secret (HMAC-SHA256
// of a fixed label under the secret, prefixed "hgc_"). Every server of
// the cluster shares the secret (the example server: its tokens file's
// secret). No other token opens it: a merchant token, the admin token or
// none get 401. The token travels in the clear over plain HTTP: keep the
// endpoint on the servers' internal network, or behind TLS.
//
// # Partial answers
//
// A peer that does not answer within the timeout, answers an error or
// garbage is missing from the answer (PeerCells names it by its URL): the
// engine reports the answer as partial (writeback.Engine.QueryDetailed)
// and counts it (Stats.PartialAnswers); Client.Stats counts the failed
// requests per peer. A server that is down holds its unflushed cells on
// its disk: they are unreadable until it returns, and every answer
// meanwhile is flagged partial.
//
// # Latency
//
// BenchmarkQueryThroughPeers: a merchant's query over one hour at one-minute
// steps (100 merchants, 60 cells each, all in the caches), through one
// server that holds everything against one of three that each hold a third
// and ask the other two over HTTP on the same machine. One run on the
// shared, loaded 2-core machine (go test -run '^$' -bench
// QueryThroughPeers -benchtime 2000x): p50 0.036 ms and p99 0.36 ms with
// one server; p50 0.25 ms and p99 4.2 ms with three.
//
// # Concurrency
//
// Handler and Client are safe for concurrent use.
package peerhttp
