package httpapi

import (
	"net/http"
	"strings"
)

// TokenOf returns the token a request carries: Authorization "Bearer <t>" or
// "Token <t>" (InfluxDB 2.x clients), the password of HTTP basic auth or the
// query parameter p (InfluxDB 1.x clients such as Telegraf's influxdb output),
// or "".
func TokenOf(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if t, ok := cutPrefixFold(h, "Bearer "); ok {
		return strings.TrimSpace(t)
	}
	if t, ok := cutPrefixFold(h, "Token "); ok {
		return strings.TrimSpace(t)
	}
	if _, p, ok := r.BasicAuth(); ok {
		return p
	}
	return r.URL.Query().Get("p")
}

func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix) {
		return s[len(prefix):], true
	}
	return "", false
}

// merchant wraps a handler of merchant requests: it resolves the merchant
// from the token (401 without a valid one) and applies the merchant's rate
// limit (429 with Retry-After). api names the ingest API in the metrics of
// refused requests ("" for reads).
func (a *API) merchant(api string, h func(http.ResponseWriter, *http.Request, string)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		m, ok := a.tokens.Merchant(TokenOf(r))
		if !ok {
			a.reject(api, "unauthorized")
			w.Header().Set("WWW-Authenticate", `Bearer realm="hourglass"`)
			Error(w, http.StatusUnauthorized, "missing or invalid merchant token (Authorization: Bearer <token>)")
			return
		}
		if ok, wait := a.limits.allow(m, a.now()); !ok {
			a.reject(api, "rate_limited")
			w.Header().Set("Retry-After", retryAfter(wait))
			Error(w, http.StatusTooManyRequests, "rate limit of merchant "+m+" exceeded; retry after "+retryAfter(wait)+" s")
			return
		}
		h(w, r, m)
	}
}

// Admin wraps a handler of admin requests: 401 without an admin token
// (Tokens.IsAdmin), as TokenOf finds it.
func (a *API) Admin(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !a.tokens.IsAdmin(TokenOf(r)) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="hourglass-admin"`)
			Error(w, http.StatusUnauthorized, "admin endpoints need the admin token (Authorization: Bearer <admin token>)")
			return
		}
		h(w, r)
	}
}

// reject counts a refused request of ingest API api ("" for reads, which
// are not counted).
func (a *API) reject(api, reason string) {
	if api != "" {
		a.metrics.reject(api, reason)
	}
}
