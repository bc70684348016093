package main

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/writeback"
)

// api is the server's HTTP API over one engine. Safe for concurrent use.
type api struct {
	eng     *writeback.Engine
	jobs    *reprocessJobs
	tokens  *tokens
	limits  *rateLimits
	maxBody int64
	metrics *serverMetrics
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
		mux.Handle(pattern, a.metrics.instrument(route, h))
	}
	handle("POST /v1/events", "/v1/events", a.merchant("events", a.postEvents))
	handle("POST /write", "/write", a.merchant("write_v1", a.postLineProtocol("write_v1")))
	handle("POST /api/v2/write", "/api/v2/write", a.merchant("write_v2", a.postLineProtocol("write_v2")))
	handle("GET /v1/metrics/{metric}", "/v1/metrics", a.merchant("", a.getMetric))
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
	return mux
}

// errorBody is the JSON of every error answer. Message and Code repeat Error
// in the form InfluxDB 2.x clients read.
type errorBody struct {
	Error   string `json:"error"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

func writeError(w http.ResponseWriter, status int, msg string) {
	code := "internal error"
	switch {
	case status == http.StatusBadRequest:
		code = "invalid"
	case status == http.StatusUnauthorized:
		code = "unauthorized"
	case status == http.StatusForbidden:
		code = "forbidden"
	case status == http.StatusNotFound:
		code = "not found"
	case status == http.StatusConflict:
		code = "conflict"
	case status == http.StatusRequestEntityTooLarge:
		code = "request too large"
	case status == http.StatusUnsupportedMediaType:
		code = "unsupported media type"
	case status == http.StatusTooManyRequests:
		code = "too many requests"
	case status == http.StatusServiceUnavailable:
		code = "unavailable"
	case status == http.StatusNotImplemented:
		code = "not implemented"
	}
	writeJSON(w, status, errorBody{Error: msg, Code: code, Message: msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeEngineError answers an engine error with its status: 400 for invalid
// input, 503 with Retry-After for back-pressure and unavailable backends.
func (a *api) writeEngineError(w http.ResponseWriter, op string, err error) {
	switch {
	case errors.Is(err, tsstore.ErrInvalid):
		writeError(w, http.StatusBadRequest, err.Error())
	case errors.Is(err, tsstore.ErrConflict):
		writeError(w, http.StatusConflict, err.Error())
	case errors.Is(err, tsstore.ErrBackPressure):
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusServiceUnavailable, err.Error())
	case errors.Is(err, tsstore.ErrClosed), errors.Is(err, context.Canceled):
		writeError(w, http.StatusServiceUnavailable, "shutting down")
	case errors.Is(err, tsstore.ErrUnavailable):
		a.metrics.storeErrors.WithLabelValues(op).Inc()
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusServiceUnavailable, err.Error())
	default:
		a.log.Error("request failed", "op", op, "err", err)
		writeError(w, http.StatusInternalServerError, err.Error())
	}
}

// retryAfter formats a wait as whole seconds, at least 1.
func retryAfter(d time.Duration) string {
	return strconv.Itoa(int(math.Max(1, math.Ceil(d.Seconds()))))
}
