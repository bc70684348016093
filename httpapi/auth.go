package httpapi

import (
	"net/http"
	"strings"
)

// TokenOf returns the token a request carries in its headers:
// Authorization "Bearer <t>" or "Token <t>" (InfluxDB 2.x clients) or the
// password of HTTP basic auth, or "". A token in the URL is not one: see
// InfluxV1TokenOf.
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
	return ""
}

// InfluxV1TokenOf returns TokenOf(r) or, when the headers carry none, the
// query parameter p, where InfluxDB 1.x clients (Telegraf's influxdb
// output) send their password. Only the InfluxDB 1.x compatible POST /write
// accepts it: a URL ends up in access logs, proxies and browser history,
// so every other route refuses a request with TokenInURL.
func InfluxV1TokenOf(r *http.Request) string {
	if t := TokenOf(r); t != "" {
		return t
	}
	return r.URL.Query().Get("p")
}

// TokenInURL reports whether r carries a token in its URL (the query
// parameter p of InfluxDB 1.x clients), which every route but POST /write
// refuses with 401 and TokenInURLMessage.
func TokenInURL(r *http.Request) bool { return r.URL.RawQuery != "" && r.URL.Query().Has("p") }

// TokenInURLMessage is the message of the 401 that refuses a token in the
// URL.
const TokenInURLMessage = "a token in the URL (?p=) is accepted only by the InfluxDB 1.x compatible POST /write: send it in the Authorization header (Bearer <token>)"

func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix) {
		return s[len(prefix):], true
	}
	return "", false
}

// merchant wraps a handler of merchant requests: it resolves the merchant
// from the token (401 without a valid one) and applies the merchant's rate
// limit (429 with Retry-After). api names the ingest API in the metrics of
// refused requests ("" for reads); only "write_v1" (POST /write) takes a
// token in the URL (InfluxV1TokenOf), the others refuse one.
func (a *API) merchant(api string, h func(http.ResponseWriter, *http.Request, string)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var tok string
		switch {
		case api == "write_v1":
			tok = InfluxV1TokenOf(r)
		case !TokenInURL(r):
			tok = TokenOf(r)
		default:
			a.reject(api, "unauthorized")
			w.Header().Set("WWW-Authenticate", `Bearer realm="hourglass"`)
			Error(w, http.StatusUnauthorized, TokenInURLMessage)
			return
		}
		m, ok := a.tokens.Merchant(tok)
		if !ok {
			a.reject(api, "unauthorized")
			w.Header().Set("WWW-Authenticate", `Bearer realm="hourglass"`)
			Error(w, http.StatusUnauthorized, "missing or invalid merchant token (Authorization: Bearer <token>)")
			return
		}
		if !a.RateLimit(w, m) {
			a.reject(api, "rate_limited")
			return
		}
		h(w, r, m)
	}
}

// RateLimit takes one request of merchant from its token bucket
// (Options.Rate and Burst), as every merchant route of the API does. Over
// the limit it answers 429 with Retry-After and returns false; the caller
// then returns. A program applies it to merchant routes of its own, such
// as a PromQL API, so that they share the merchant's limit.
func (a *API) RateLimit(w http.ResponseWriter, merchant string) bool {
	ok, wait := a.limits.allow(merchant, a.now())
	if ok {
		return true
	}
	w.Header().Set("Retry-After", retryAfter(wait))
	Error(w, http.StatusTooManyRequests, "rate limit of merchant "+merchant+" exceeded; retry after "+retryAfter(wait)+" s")
	return false
}

// Admin wraps a handler of admin requests: 401 without an admin token
// (Tokens.IsAdmin), as TokenOf finds it, and 401 with TokenInURLMessage for
// a request with a token in its URL.
func (a *API) Admin(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if TokenInURL(r) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="hourglass-admin"`)
			Error(w, http.StatusUnauthorized, TokenInURLMessage)
			return
		}
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
