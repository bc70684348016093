package main

import (
	"io"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/hourglass-io/hourglass/examples/server/web"
	"github.com/hourglass-io/hourglass/httpapi"
	"github.com/hourglass-io/hourglass/writeback"
	"github.com/hourglass-io/hourglass/writeback/peerhttp"
)

// api is the server's HTTP API over one engine: the ingest and query
// endpoints of package httpapi, plus the admin endpoints, health checks
// and /metrics. Safe for concurrent use.
type api struct {
	http    *httpapi.API
	eng     *writeback.Engine
	jobs    *reprocessJobs
	tokens  *httpapi.TokenFile
	metrics *httpapi.Metrics
	reg     *prometheus.Registry
	log     *slog.Logger
	now     func() time.Time
	// ready is false until the server accepts requests and again once it
	// shuts down (/readyz answers 503).
	ready atomic.Bool
}

// handler returns the API's routes.
func (a *api) handler() http.Handler {
	mux := http.NewServeMux()
	handle := func(pattern, route string, h http.HandlerFunc) {
		mux.Handle(pattern, a.metrics.Instrument(route, h))
	}
	a.http.Register(mux)
	mux.Handle("/api/v1/", a.metrics.Instrument("/api/v1", a.promHandler())) // PromQL: promql.go
	handle("POST /v1/admin/flush", "/v1/admin/flush", a.admin(a.postFlush))
	handle("POST /v1/admin/merchants", "/v1/admin/merchants", a.admin(a.postMerchant))
	handle("GET /v1/admin/quarantine", "/v1/admin/quarantine", a.admin(a.getQuarantine))
	handle("POST /v1/admin/quarantine/resubmit", "/v1/admin/quarantine/resubmit", a.admin(a.postResubmit))
	handle("POST /v1/admin/reprocess", "/v1/admin/reprocess", a.admin(a.postReprocess))
	handle("GET /v1/admin/reprocess", "/v1/admin/reprocess", a.admin(a.listReprocess))
	handle("GET /v1/admin/reprocess/{id}", "/v1/admin/reprocess/{id}", a.admin(a.getReprocess))
	handle("GET /v1/admin/reprocess/{id}/diff", "/v1/admin/reprocess/{id}/diff", a.admin(a.getReprocessDiff))
	handle("POST /v1/admin/reprocess/{id}/switch", "/v1/admin/reprocess/{id}/switch", a.admin(a.postReprocessSwitch))
	handle("POST /v1/admin/reprocess/{id}/catchup", "/v1/admin/reprocess/{id}/catchup", a.admin(a.postReprocessCatchUp))
	handle("GET /healthz", "/healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	handle("GET /readyz", "/readyz", func(w http.ResponseWriter, r *http.Request) {
		if !a.ready.Load() {
			writeError(w, http.StatusServiceUnavailable, "shutting down")
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(a.reg, promhttp.HandlerOpts{}))
	mux.Handle("GET /{$}", web.Handler()) // the dashboard
	mux.Handle("GET "+web.AssetPrefix, web.Handler())
	// The other servers of a cluster read this one's cached cells here,
	// with the token derived from the tokens file's secret.
	mux.Handle("POST "+peerhttp.Path, a.metrics.Instrument(peerhttp.Path, &peerhttp.Handler{Secret: a.tokens.ClusterSecret(), Cells: a.eng.CachedCells}))
	return mux
}

// The answers of the admin endpoints are httpapi's.
var (
	writeJSON  = httpapi.WriteJSON
	writeError = httpapi.Error
)

// admin wraps a handler of admin requests: 401 without the admin token.
func (a *api) admin(h http.HandlerFunc) http.HandlerFunc { return a.http.Admin(h) }

// writeEngineError answers an engine error with its status (see
// httpapi.WriteError), counting store errors and logging the 500s.
func (a *api) writeEngineError(w http.ResponseWriter, op string, err error) {
	a.http.WriteEngineError(w, op, err)
}

// decodeBody decodes the JSON body of an admin request, of at most limit
// bytes, into v; unknown fields are refused.
func decodeBody(w http.ResponseWriter, r *http.Request, limit int64, v any) error {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		return err
	}
	return httpapi.DecodeJSON(b, v)
}
