package main

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/hourglass-io/hourglass/httpapi"
	"github.com/hourglass-io/hourglass/httpapi/promapi"
)

// promHandler is the Prometheus query API (/api/v1/...) over the engine's
// merged view: Grafana, promtool and client_golang read with the merchant
// token (Bearer, basic-auth password, X-Hourglass-Token) or the admin
// token, which sees all merchants. A merchant's queries take from its rate
// limit, which its other requests share (429 with Retry-After over it).
func (a *api) promHandler() http.Handler {
	h := promapi.NewHandler(a.eng, &promapi.Options{
		Authorize: func(r *http.Request) (string, bool, error) {
			acc := r.Context().Value(promAccessKey{}).(*promAccess)
			return acc.merchant, acc.admin, acc.err
		},
		Metrics:    func(context.Context) ([]string, error) { return processorMetrics, nil },
		Registerer: a.reg, // prometheus_engine_* on /metrics
		Logger:     a.log,
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var acc promAccess
		acc.merchant, acc.admin, acc.err = a.promAuthorize(r)
		if acc.err == nil && !acc.admin && !a.http.RateLimit(w, acc.merchant) {
			return
		}
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), promAccessKey{}, &acc)))
	})
}

// promAccessKey is the context key of a PromQL request's promAccess, which
// promHandler finds once for the rate limit and the handler's Authorize.
type promAccessKey struct{}

// promAccess is what promAuthorize told of a request.
type promAccess struct {
	merchant string
	admin    bool
	err      error
}

// promAuthorize tells the merchant, or the admin, of a query request.
func (a *api) promAuthorize(r *http.Request) (merchant string, admin bool, err error) {
	if httpapi.TokenInURL(r) {
		return "", false, errors.New(httpapi.TokenInURLMessage)
	}
	tok := httpapi.TokenOf(r)
	if t := r.Header.Get("X-Hourglass-Token"); t != "" {
		tok = strings.TrimSpace(t)
	}
	if a.tokens.IsAdmin(tok) {
		return "", true, nil
	}
	if m, ok := a.tokens.Merchant(tok); ok {
		return m, false, nil
	}
	return "", false, errors.New("missing or invalid token (Authorization: Bearer <token>, basic auth with the token as password, or X-Hourglass-Token)")
}
