// Package proxy is an HTTP reverse proxy over a balancer.Balancer of
// upstream URLs, built on net/http/httputil.ReverseProxy: each request goes
// to the upstream the balancer's policy picks (with an affinity key from
// Options.Key, for example the merchant in a header, for
// balancer.ConsistentHash); a failed attempt (a transport error, or a 502,
// 503 or 504 answer) of an idempotent request whose body can be replayed is
// retried on another upstream. Every attempt's outcome is reported to the
// balancer: transport errors and 5xx answers count as failures (passive
// outlier ejection, peak-EWMA penalty), and an attempt stays in flight until
// its response body is closed.
//
// When no upstream can be picked the proxy answers 503 Service Unavailable
// with a body saying why (none registered, all unhealthy, all ejected);
// when the upstreams failed it answers 502 Bad Gateway naming the upstream
// and its error. When the last attempt got a 5xx answer, that answer is
// passed through.
//
// # Concurrency
//
// A Proxy is safe for concurrent use.
//
// # Errors
//
// Errors are answered to the client, not returned: 503 when no upstream is
// usable, 502 when the upstreams failed. They are logged to
// Options.ErrorLog when set.
package proxy
