// Package proxy is an HTTP reverse proxy over a balancer.Balancer of
// upstream URLs, built on net/http/httputil.ReverseProxy: each request goes
// to the upstream the balancer's policy picks (with an affinity key from
// Options.Key, for example the merchant in a header, for
// balancer.ConsistentHash); a failed attempt (a transport error, or a 502,
// 503 or 504 answer) of a retryable request (Options.Retryable: GET and
// HEAD by default) whose body can be replayed is retried on another
// upstream. Other requests, writes in particular, go to one upstream only:
// with affinity, another upstream would be a second writer for the key.
// Every attempt's outcome is reported to the balancer: transport errors and
// 5xx answers count as failures (passive outlier ejection, peak-EWMA
// penalty), and an attempt stays in flight until its response body is
// closed.
//
// A 503 with a Retry-After header is load shed on purpose by a working
// upstream (back-pressure of a full cache, a rate limit): it is not counted
// as a failure, so the upstream is not ejected and its keys do not move;
// a request that is not retryable gets that answer, Retry-After included.
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
