// Package web is the example server's merchant dashboard: one page and its
// assets (HTML, CSS and JavaScript that draws its own SVG charts), embedded
// in the binary, so the server needs nothing but Go and fetches nothing from
// the internet at run time.
//
// The page is a client of the server's public API and nothing else: a
// merchant signs in with its token (kept in the tab's sessionStorage, sent
// as an Authorization header, never put in a URL) and reads
// GET /v1/metrics/{metric} (revenue by currency, orders by status, refunds,
// views, breakdowns by path, country and device, with the change against
// the previous period, and a live last hour that refreshes every few
// seconds); POST /v1/events backs its "send test events" form. With the
// admin token it shows the operator view: GET /metrics (flush lag against
// the flush interval and budget, cache size against its bound, flushes,
// store errors, replicas), GET /v1/admin/reprocess (jobs and their
// progress) and GET /v1/admin/quarantine when the server has it.
//
// # Concurrency
//
// The handler is safe for concurrent use.
package web
