package httpapi

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/tsstore/memstore"
	"github.com/hourglass-io/hourglass/tsstore/storetest"
	"github.com/hourglass-io/hourglass/writeback"
	"github.com/hourglass-io/hourglass/writeback/localcache"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testAPI is an API over a real engine (localcache over memstore) with a
// fresh tokens file, and the token of merchant "shop".
type testAPI struct {
	t      testing.TB
	api    *API
	eng    *writeback.Engine
	tokens *TokenFile
	token  string
}

func newTestAPI(t *testing.T, opts *Options) *testAPI {
	t.Helper()
	return newTestAPIWith(t, nil, opts)
}

// newTestAPIWith is newTestAPI with the engine's options.
func newTestAPIWith(t testing.TB, engOpts *writeback.Options, opts *Options) *testAPI {
	t.Helper()
	return newTestAPIOn(t, memstore.New(nil), engOpts, opts)
}

// newTestAPIOn is newTestAPIWith over store.
func newTestAPIOn(t testing.TB, store tsstore.Store, engOpts *writeback.Options, opts *Options) *testAPI {
	t.Helper()
	dir := t.TempDir()
	cache, err := localcache.Open(filepath.Join(dir, "cache"), nil)
	if err != nil {
		t.Fatal(err)
	}
	eng, err := writeback.New(cache, store, engOpts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := eng.Close(); err != nil {
			t.Error(err)
		}
		if err := cache.Close(); err != nil {
			t.Error(err)
		}
	})
	toks, created, err := OpenTokenFile(filepath.Join(dir, "tokens.json"))
	if err != nil || !created {
		t.Fatalf("OpenTokenFile: created %v, %v", created, err)
	}
	if opts == nil {
		opts = &Options{}
	}
	if opts.DecodeEvent == nil {
		opts.DecodeEvent = decodeTestEvent
	}
	a, err := New(eng, toks, opts)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := toks.MerchantToken("shop")
	if err != nil {
		t.Fatal(err)
	}
	return &testAPI{t: t, api: a, eng: eng, tokens: toks, token: tok}
}

// do serves one request with token as bearer and returns the recorder.
func (ta *testAPI) do(method, target, token string, header http.Header, body []byte) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, target, bytes.NewReader(body))
	for k, v := range header {
		r.Header[k] = v
	}
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	w := httptest.NewRecorder()
	ta.api.ServeHTTP(w, r)
	return w
}

// total returns the sum over all series of metric for the test merchant.
func (ta *testAPI) total(metric string) float64 {
	ta.t.Helper()
	w := ta.do("GET", "/v1/metrics/"+metric+"?from=now-144h&step=24h&group_by=", ta.token, nil, nil)
	if w.Code != http.StatusOK {
		ta.t.Fatalf("query %s: %d %s", metric, w.Code, w.Body)
	}
	var r metricResponse
	if err := json.Unmarshal(w.Body.Bytes(), &r); err != nil {
		ta.t.Fatal(err)
	}
	var sum float64
	for _, s := range r.Series {
		sum += s.Total
	}
	return sum
}

func ctype(ct string) http.Header { return http.Header{"Content-Type": {ct}} }

// TestIngestEveryAPI: events (JSON and NDJSON), both line-protocol APIs
// (gzip too) reach the engine under the token's merchant; a foreign token
// reads none of it.
func TestIngestEveryAPI(t *testing.T) {
	ta := newTestAPI(t, nil)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte("m value=4\n"))
	zw.Close()
	for _, c := range []struct {
		path   string
		header http.Header
		body   []byte
		want   int
	}{
		{"/v1/events", ctype("application/json"), []byte(`[{"metric":"m","value":1},{"metric":"m","value":2,"labels":{"merchant":"shop"}}]`), 200},
		{"/v1/events", ctype("application/x-ndjson"), []byte("{\"metric\":\"m\",\"value\":3}\n\n"), 200},
		{"/write?precision=s", nil, []byte(fmt.Sprintf("m value=5 %d", time.Now().Unix())), 204},
		{"/api/v2/write", http.Header{"Content-Encoding": {"gzip"}}, gz.Bytes(), 204},
	} {
		if w := ta.do("POST", c.path, ta.token, c.header, c.body); w.Code != c.want {
			t.Fatalf("POST %s: %d %s, want %d", c.path, w.Code, w.Body, c.want)
		}
	}
	if got := ta.total("m"); got != 15 {
		t.Errorf("m = %v, want 15", got)
	}
	other, _ := ta.tokens.MerchantToken("other")
	w := ta.do("GET", "/v1/metrics/m?group_by=merchant", other, nil, nil)
	if w.Code != http.StatusOK || strings.Contains(w.Body.String(), `"shop"`) {
		t.Errorf("another merchant reads: %d %s", w.Code, w.Body)
	}
}

// TestRefusals: every refusal's status, and nothing of a refused request
// kept.
func TestRefusals(t *testing.T) {
	ta := newTestAPI(t, &Options{MaxBody: 100, Rate: -1})
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(strings.Repeat("m value=1\n", 100)))
	zw.Close()
	gzHeader := http.Header{"Content-Encoding": {"gzip"}}
	for _, c := range []struct {
		name, target, token string
		header              http.Header
		body                string
		want                int
		contains            string
	}{
		{"no token", "/write", "", nil, "m value=1", 401, "token"},
		{"forged token", "/write", "hg_shop_x", nil, "m value=1", 401, "token"},
		{"too large", "/write", ta.token, nil, strings.Repeat("m value=1\n", 11), 413, "100 bytes"},
		{"too large after gzip", "/write", ta.token, gzHeader, gz.String(), 413, "100 bytes"},
		{"bad gzip", "/write", ta.token, gzHeader, "m value=1", 400, "reading the body"},
		{"deflate", "/write", ta.token, http.Header{"Content-Encoding": {"deflate"}}, "m value=1", 400, "only gzip"},
		{"csv", "/v1/events", ta.token, ctype("text/csv"), "a,b", 415, "Content-Type"},
		{"no events", "/v1/events", ta.token, ctype("application/json"), "[]", 400, "no events"},
		{"not an array", "/v1/events", ta.token, ctype("application/json"), `{"metric":"m"}`, 400, "JSON array"},
		{"after the array", "/v1/events", ta.token, ctype("application/json"), `[{"metric":"m"}] 1`, 400, "after the array"},
		{"two values a line", "/v1/events", ta.token, ctype("application/x-ndjson"), `{"metric":"m"} {}`, 400, "line 1: more than one JSON value"},
		{"unknown field", "/v1/events", ta.token, ctype("application/json"), `[{"metric":"m","colour":1}]`, 400, `event 0: unknown field \"colour\"`},
		{"truncated", "/v1/events", ta.token, ctype("application/json"), `[{"metric":"m",`, 400, "event 0: truncated JSON"},
		{"precision", "/write?precision=fortnight", ta.token, nil, "m value=1", 400, `precision \"fortnight\"`},
		{"strings only", "/write", ta.token, nil, `m s="x"`, 400, "no numeric fields"},
		{"bad step", "/v1/metrics/m?step=90s", ta.token, nil, "", 400, "step"},
		{"foreign label filter", "/v1/metrics/m?label.merchant=other", ta.token, nil, "", 400, "merchant"},
		{"unknown parameter", "/v1/metrics/m?colour=red", ta.token, nil, "", 400, "unknown parameter"},
		{"bad agg", "/v1/metrics/m?agg=median", ta.token, nil, "", 400, "agg"},
		{"from after to", "/v1/metrics/m?from=now&to=now-1h", ta.token, nil, "", 400, "not before"},
	} {
		method := "POST"
		if strings.HasPrefix(c.target, "/v1/metrics") {
			method = "GET"
		}
		w := ta.do(method, c.target, c.token, c.header, []byte(c.body))
		if w.Code != c.want || !strings.Contains(w.Body.String(), c.contains) {
			t.Errorf("%s: %d %s, want %d containing %s", c.name, w.Code, w.Body, c.want, c.contains)
		}
		if w.Code == 401 && w.Header().Get("WWW-Authenticate") == "" {
			t.Errorf("%s: 401 without WWW-Authenticate", c.name)
		}
	}
	if got := ta.total("m"); got != 0 {
		t.Errorf("m = %v after refused requests, want 0", got)
	}
}

// TestRateLimit: a merchant over its bucket gets 429 with Retry-After;
// another merchant does not.
func TestRateLimit(t *testing.T) {
	now := time.Now()
	ta := newTestAPI(t, &Options{Rate: 1, Burst: 2, Now: func() time.Time { return now }})
	for i, want := range []int{200, 200, 429} {
		w := ta.do("GET", "/v1/metrics/m", ta.token, nil, nil)
		if w.Code != want {
			t.Fatalf("request %d: %d %s, want %d", i, w.Code, w.Body, want)
		}
		if want == 429 && w.Header().Get("Retry-After") != "1" {
			t.Errorf("429 with Retry-After %q, want 1", w.Header().Get("Retry-After"))
		}
	}
	other, _ := ta.tokens.MerchantToken("other")
	if w := ta.do("GET", "/v1/metrics/m", other, nil, nil); w.Code != 200 {
		t.Errorf("another merchant: %d", w.Code)
	}
}

// TestAdmin: Admin lets only the admin token through; merchant tokens and
// the admin token are not interchangeable.
func TestAdmin(t *testing.T) {
	ta := newTestAPI(t, nil)
	h := ta.api.Admin(func(w http.ResponseWriter, r *http.Request) { WriteJSON(w, 200, "ok") })
	for tok, want := range map[string]int{ta.tokens.AdminToken(): 200, ta.token: 401, "": 401} {
		r := httptest.NewRequest("POST", "/x", nil)
		r.Header.Set("Authorization", "Bearer "+tok)
		w := httptest.NewRecorder()
		h(w, r)
		if w.Code != want {
			t.Errorf("token %q: %d, want %d", tok, w.Code, want)
		}
	}
	if w := ta.do("GET", "/v1/metrics/m", ta.tokens.AdminToken(), nil, nil); w.Code != 401 {
		t.Errorf("admin token on a merchant endpoint: %d, want 401", w.Code)
	}
}

// TestTokenInURL: only the InfluxDB 1.x compatible POST /write takes a
// token in the URL (?p=); every other route, the admin ones too, refuses
// one with 401 and a message naming the Authorization header, even a valid
// token and even next to a valid header.
func TestTokenInURL(t *testing.T) {
	ta := newTestAPI(t, &Options{Rate: -1})
	if w := ta.do("POST", "/write?u=x&p="+ta.token, "", nil, []byte("m value=2")); w.Code != http.StatusNoContent {
		t.Fatalf("/write?p=: %d %s, want 204", w.Code, w.Body)
	}
	if got := ta.total("m"); got != 2 {
		t.Errorf("m = %v after /write?p=, want 2", got)
	}
	for _, c := range []struct{ method, target, header string }{
		{"POST", "/api/v2/write?p=" + ta.token, ""},
		{"GET", "/v1/metrics/m?p=" + ta.token, ""},
		{"GET", "/v1/metrics/m?p=" + ta.token, ta.token},
		{"POST", "/v1/events?p=" + ta.token, ""},
	} {
		w := ta.do(c.method, c.target, c.header, ctype("application/json"), []byte(`[{"metric":"m"}]`))
		if w.Code != http.StatusUnauthorized || !strings.Contains(w.Body.String(), "Authorization header") {
			t.Errorf("%s %s (header token %v): %d %s, want 401 naming the Authorization header", c.method, c.target, c.header != "", w.Code, w.Body)
		}
	}
	h := ta.api.Admin(func(w http.ResponseWriter, r *http.Request) { WriteJSON(w, 200, "ok") })
	for _, header := range []string{"", ta.tokens.AdminToken()} {
		r := httptest.NewRequest("POST", "/v1/admin/flush?p="+ta.tokens.AdminToken(), nil)
		if header != "" {
			r.Header.Set("Authorization", "Bearer "+header)
		}
		w := httptest.NewRecorder()
		h(w, r)
		if w.Code != http.StatusUnauthorized || !strings.Contains(w.Body.String(), "Authorization header") {
			t.Errorf("admin with ?p= (header token %v): %d %s, want 401 naming the Authorization header", header != "", w.Code, w.Body)
		}
	}
	if got := ta.total("m"); got != 2 {
		t.Errorf("m = %v after refused requests, want 2", got)
	}
}

// TestWriteError: each error kind's status and Retry-After.
func TestWriteError(t *testing.T) {
	for _, c := range []struct {
		err   error
		want  int
		retry bool
	}{
		{tsstore.Errorf(tsstore.ErrInvalid, "x"), 400, false},
		{tsstore.Errorf(tsstore.ErrConflict, "x"), 409, false},
		{tsstore.Errorf(tsstore.ErrBackPressure, "x"), 503, true},
		{tsstore.Errorf(tsstore.ErrUnavailable, "x"), 503, true},
		{tsstore.Errorf(tsstore.ErrClosed, "x"), 503, false},
		{errors.New("x"), 500, false},
	} {
		w := httptest.NewRecorder()
		if got := WriteError(w, c.err); got != c.want || w.Code != c.want || (w.Header().Get("Retry-After") != "") != c.retry {
			t.Errorf("%v: %d (returned %d), Retry-After %q; want %d, Retry-After %v", c.err, w.Code, got, w.Header().Get("Retry-After"), c.want, c.retry)
		}
	}
}

// TestTokenFile: tokens survive a reopen, are bound to their merchant,
// and invalid merchant ids are refused.
func TestTokenFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.json")
	a, created, err := OpenTokenFile(path)
	if err != nil || !created {
		t.Fatal(created, err)
	}
	b, created, err := OpenTokenFile(path)
	if err != nil || created {
		t.Fatal(created, err)
	}
	tok, _ := a.MerchantToken("m-1")
	if m, ok := b.Merchant(tok); !ok || m != "m-1" {
		t.Errorf("reopened file: Merchant = %q, %v", m, ok)
	}
	if !b.IsAdmin(a.AdminToken()) || b.IsAdmin(tok) {
		t.Error("admin token not kept, or a merchant token is admin")
	}
	for _, id := range []string{"", "a_b", "-a", strings.Repeat("a", 65)} {
		if _, err := a.MerchantToken(id); !errors.Is(err, tsstore.ErrInvalid) {
			t.Errorf("MerchantToken(%q): %v, want ErrInvalid", id, err)
		}
	}
}

// TestAdmitWhileFlushing: while the engine flushes, a write request beyond
// its FlushWriters waits in Admit before it decodes anything, and goes on
// when a write ends; one whose client goes away while it waits gets 503
// and nothing of it is kept.
func TestAdmitWhileFlushing(t *testing.T) {
	ta, store, flushed, hold := flushingWithPlaceTaken(t, &writeback.Options{FlushWriters: 1, FlushStall: -1, FlushInterval: -1})
	written := ta.eng.Stats().PointsWritten

	// A request whose client leaves while it waits.
	cctx, cancel := context.WithCancel(context.Background())
	gone := make(chan *httptest.ResponseRecorder, 1)
	go func() {
		r := httptest.NewRequest("POST", "/write?precision=s", bytes.NewReader(mLine(100))).WithContext(cctx)
		r.Header.Set("Authorization", "Bearer "+ta.token)
		w := httptest.NewRecorder()
		ta.api.ServeHTTP(w, r)
		gone <- w
	}()
	waitingInAdmit(t, ta, 1)
	cancel()
	if w := <-gone; w.Code != http.StatusServiceUnavailable {
		t.Errorf("request cancelled while waiting: %d %s, want 503", w.Code, w.Body)
	}

	// Requests of both kinds wait, then go on when the place is free.
	results := make(chan *httptest.ResponseRecorder, 2)
	go func() { results <- ta.do("POST", "/write?precision=s", ta.token, nil, mLine(10)) }()
	go func() {
		results <- ta.do("POST", "/v1/events", ta.token, ctype("application/json"), []byte(`[{"metric":"m","value":20}]`))
	}()
	waitingInAdmit(t, ta, 3)
	if got := ta.eng.Stats().PointsWritten; got != written {
		t.Fatalf("points written while every request waited: %d, want %d", got, written)
	}
	hold()
	for range 2 {
		if w := <-results; w.Code != http.StatusNoContent && w.Code != http.StatusOK {
			t.Errorf("request after waiting: %d %s", w.Code, w.Body)
		}
	}
	store.Let()
	if err := <-flushed; err != nil {
		t.Fatal(err)
	}
	if got := ta.total("m"); got != 31 {
		t.Errorf("m = %v, want 31 (1 + 10 + 20; the cancelled 100 is not kept)", got)
	}
}

// TestAdmitRefusedWhenTooManyWait: while a flush runs, a request beyond
// FlushWaiters waiting ones gets 503 with Retry-After at once and keeps
// nothing; the waiting one goes on.
func TestAdmitRefusedWhenTooManyWait(t *testing.T) {
	ta, store, flushed, hold := flushingWithPlaceTaken(t, &writeback.Options{FlushWriters: 1, FlushWaiters: 1, FlushStall: -1, FlushInterval: -1})
	waited := make(chan *httptest.ResponseRecorder, 1)
	go func() { waited <- ta.do("POST", "/write?precision=s", ta.token, nil, mLine(10)) }()
	waitingInAdmit(t, ta, 1)
	w := ta.do("POST", "/write?precision=s", ta.token, nil, mLine(100))
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" || !strings.Contains(w.Body.String(), "FlushWaiters") {
		t.Errorf("a request beyond FlushWaiters: %d, Retry-After %q, %s; want 503 with Retry-After naming FlushWaiters",
			w.Code, w.Header().Get("Retry-After"), w.Body)
	}
	if s := ta.eng.Stats(); s.AdmitRefused != 1 || s.AdmitWaits != 1 {
		t.Errorf("Stats: AdmitRefused %d, AdmitWaits %d; want 1 and 1", s.AdmitRefused, s.AdmitWaits)
	}
	hold()
	if w := <-waited; w.Code != http.StatusNoContent {
		t.Errorf("the waiting request: %d %s", w.Code, w.Body)
	}
	store.Let()
	if err := <-flushed; err != nil {
		t.Fatal(err)
	}
	if got := ta.total("m"); got != 11 {
		t.Errorf("m = %v, want 11 (1 + 10; the refused 100 is not kept)", got)
	}
}

// mLine is a line of metric m with value v, now, in seconds.
func mLine(v int) []byte { return fmt.Appendf(nil, "m value=%d %d", v, time.Now().Unix()) }

// flushingWithPlaceTaken makes a test API whose engine (of o, over a held
// memstore) has written m = 1 and is held in its flush's first store
// Write, with the one place for a write while it flushes taken: hold
// gives it back, store.Let lets the flush go on, which then sends its
// error on flushed.
func flushingWithPlaceTaken(t *testing.T, o *writeback.Options) (ta *testAPI, store *storetest.HeldStore, flushed <-chan error, hold func()) {
	t.Helper()
	store = storetest.Hold(memstore.New(nil))
	ta = newTestAPIOn(t, store, o, nil)
	t.Cleanup(store.Let) // before the engine's Close, should the test stop early
	if w := ta.do("POST", "/write?precision=s", ta.token, nil, mLine(1)); w.Code != http.StatusNoContent {
		t.Fatalf("write with no flush: %d %s", w.Code, w.Body)
	}
	done := make(chan error, 1)
	go func() {
		_, err := ta.eng.Flush(context.Background())
		done <- err
	}()
	<-store.Entered()
	hold, err := ta.eng.Admit(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return ta, store, done, hold
}

// waitingInAdmit waits (at most 10 s) until n requests in all have waited
// in Admit.
func waitingInAdmit(t *testing.T, ta *testAPI, n int64) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ta.eng.Stats().AdmitWaits < n; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no request waiting to be admitted after 10 s (AdmitWaits %d, want %d)", ta.eng.Stats().AdmitWaits, n)
		}
	}
}
