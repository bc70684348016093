package proxy_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hourglass-io/hourglass/balancer"
	"github.com/hourglass-io/hourglass/balancer/proxy"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// upstream is a real HTTP server that answers with its name, or with a
// set failure status while failing is set.
type upstream struct {
	name    string
	srv     *httptest.Server
	failing atomic.Int32 // a status to answer with; 0 = healthy
	// shedding makes the failure answers carry Retry-After (load shed on
	// purpose, such as the back-pressure of a full cache).
	shedding atomic.Bool
	hits     atomic.Int64
	mu       sync.Mutex // guards bodies
	bodies   []string
}

func newUpstream(t *testing.T, name string) *upstream {
	u := &upstream{name: name}
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		u.mu.Lock()
		u.bodies = append(u.bodies, string(body))
		u.mu.Unlock()
		if r.URL.Path == "/healthz" {
			if u.failing.Load() != 0 {
				w.WriteHeader(http.StatusServiceUnavailable)
			}
			return
		}
		u.hits.Add(1)
		if code := u.failing.Load(); code != 0 {
			if u.shedding.Load() {
				w.Header().Set("Retry-After", "5")
			}
			http.Error(w, u.name+" is failing", int(code))
			return
		}
		fmt.Fprintf(w, "%s %s %s xff=%s", u.name, r.Method, r.URL.RequestURI(), r.Header.Get("X-Forwarded-For"))
	}))
	t.Cleanup(u.srv.Close)
	return u
}

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// setup returns a proxy server over the upstreams with the policy.
func setup(t *testing.T, p balancer.Policy, opts *balancer.Options[*url.URL], popts *proxy.Options, ups ...*upstream) (*httptest.Server, *balancer.Balancer[*url.URL]) {
	t.Helper()
	if opts == nil {
		opts = &balancer.Options[*url.URL]{}
	}
	opts.Seed = 1
	b := balancer.New(p, opts)
	t.Cleanup(func() { b.Close() })
	var urls []string
	for _, u := range ups {
		urls = append(urls, u.srv.URL)
	}
	backends, err := proxy.Backends(urls...)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Add(backends...); err != nil {
		t.Fatal(err)
	}
	front := httptest.NewServer(proxy.New(b, popts))
	t.Cleanup(front.Close)
	return front, b
}

func do(t *testing.T, method, u, body string, hdr ...string) (int, string) {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, u, r)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestProxyRoundRobin(t *testing.T) {
	a, b, c := newUpstream(t, "a"), newUpstream(t, "b"), newUpstream(t, "c")
	front, bal := setup(t, balancer.RoundRobin(), nil, nil, a, b, c)
	for range 30 {
		code, body := do(t, "GET", front.URL+"/v1/query?metric=orders", "")
		if code != 200 || !strings.Contains(body, " GET /v1/query?metric=orders xff=127.0.0.1") {
			t.Fatalf("GET through the proxy: %d %q", code, body)
		}
	}
	for _, u := range []*upstream{a, b, c} {
		if n := u.hits.Load(); n != 10 {
			t.Errorf("upstream %s got %d of 30 requests, want 10", u.name, n)
		}
	}
	for _, s := range bal.Status() {
		if s.InFlight != 0 {
			t.Errorf("%s still in flight after the responses were read: %+v", s.ID, s)
		}
	}
}

func TestProxyRetriesAndRecovers(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	a, b, c := newUpstream(t, "a"), newUpstream(t, "b"), newUpstream(t, "c")
	front, bal := setup(t, balancer.RoundRobin(), &balancer.Options[*url.URL]{
		Now: clk.Now, ConsecutiveFailures: 2, BaseEjectionTime: time.Minute, MaxEjectionPercent: 50,
	}, &proxy.Options{Retryable: retryPut}, a, b, c)
	b.failing.Store(http.StatusServiceUnavailable)

	// Idempotent requests never see b's failure: retried on another.
	for i := range 12 {
		code, body := do(t, "PUT", front.URL+"/x", fmt.Sprint("payload-", i))
		if code != 200 || strings.HasPrefix(body, "b ") {
			t.Fatalf("PUT %d: %d %q", i, code, body)
		}
	}
	// Every payload arrived once at a or c.
	var all []string
	for _, u := range []*upstream{a, c} {
		u.mu.Lock()
		all = append(all, u.bodies...)
		u.mu.Unlock()
	}
	if len(all) != 12 {
		t.Errorf("a and c received %d bodies, want 12: %q", len(all), all)
	}
	if s := statusOf(bal, b.srv.URL); !s.Ejected || s.Failures != 2 {
		t.Fatalf("b after failing: %+v, want ejected after 2 failures", s)
	}
	hits := b.hits.Load()
	for range 10 {
		if code, _ := do(t, "GET", front.URL+"/y", ""); code != 200 {
			t.Fatalf("GET with b ejected: %d", code)
		}
	}
	if b.hits.Load() != hits {
		t.Errorf("ejected upstream got %d requests", b.hits.Load()-hits)
	}

	// b recovers; once its ejection ends it serves again.
	b.failing.Store(0)
	clk.Advance(time.Minute)
	for range 30 {
		if code, _ := do(t, "GET", front.URL+"/z", ""); code != 200 {
			t.Fatalf("GET after recovery: %d", code)
		}
	}
	if n := b.hits.Load() - hits; n != 10 {
		t.Errorf("recovered upstream got %d of 30 requests, want 10", n)
	}
}

func statusOf(b *balancer.Balancer[*url.URL], id string) balancer.Status {
	for _, s := range b.Status() {
		if s.ID == id {
			return s
		}
	}
	return balancer.Status{}
}

func TestProxyRetriedBodyIsWhole(t *testing.T) {
	a, b := newUpstream(t, "a"), newUpstream(t, "b")
	front, _ := setup(t, balancer.RoundRobin(), &balancer.Options[*url.URL]{ConsecutiveFailures: -1}, &proxy.Options{Retryable: retryPut}, a, b)
	a.failing.Store(http.StatusBadGateway)
	for i := range 4 {
		code, body := do(t, "PUT", front.URL+"/doc", fmt.Sprint("document-", i))
		if code != 200 || !strings.HasPrefix(body, "b PUT /doc") {
			t.Fatalf("PUT %d: %d %q", i, code, body)
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if got := strings.Join(b.bodies, ","); got != "document-0,document-1,document-2,document-3" {
		t.Errorf("bodies at b: %q", got)
	}
}

func TestProxyDoesNotRetryPost(t *testing.T) {
	a, b := newUpstream(t, "a"), newUpstream(t, "b")
	front, _ := setup(t, balancer.RoundRobin(), &balancer.Options[*url.URL]{ConsecutiveFailures: -1}, nil, a, b)
	a.failing.Store(http.StatusServiceUnavailable)
	statuses := map[int]int{}
	for range 10 {
		code, _ := do(t, "POST", front.URL+"/write", "event")
		statuses[code]++
	}
	// Half go to a and get its 503 passed through; none is retried.
	if statuses[503] != 5 || statuses[200] != 5 || a.hits.Load()+b.hits.Load() != 10 {
		t.Errorf("POST statuses %v, hits a=%d b=%d; want 5/5 and no retries", statuses, a.hits.Load(), b.hits.Load())
	}
	// Nor are PUT, DELETE, or a POST with an idempotency key: by default
	// only GET and HEAD go to another upstream.
	hits := a.hits.Load() + b.hits.Load()
	codes := map[int]int{}
	for _, m := range []string{"PUT", "DELETE", "POST", "PUT", "DELETE", "POST"} {
		code, _ := do(t, m, front.URL+"/write", "event", "Idempotency-Key", "k1")
		codes[code]++
	}
	if codes[503] != 3 || a.hits.Load()+b.hits.Load()-hits != 6 {
		t.Errorf("PUT, DELETE, POST with Idempotency-Key: statuses %v, %d hits; want 3 failures passed through, no retries", codes, a.hits.Load()+b.hits.Load()-hits)
	}
}

// retryPut is a Retryable that also retries PUT (idempotent for these
// tests' upstreams).
func retryPut(r *http.Request) bool { return r.Method == "PUT" || proxy.RetryGetHead(r) }

// TestProxyPassesBackPressure: a write that an upstream sheds with 503 and
// Retry-After (a full write-back cache) goes back to the client with its
// Retry-After, is not sent to another upstream, and does not count as a
// failure: the upstream is not ejected, so the merchant's writes stay on
// it. A GET shed the same way may go to another upstream.
func TestProxyPassesBackPressure(t *testing.T) {
	ups := []*upstream{newUpstream(t, "a"), newUpstream(t, "b"), newUpstream(t, "c")}
	front, bal := setup(t, balancer.ConsistentHash(nil), &balancer.Options[*url.URL]{ConsecutiveFailures: 1, MaxEjectionPercent: 100},
		&proxy.Options{Key: proxy.HeaderKey("X-Merchant")}, ups...)
	_, first := do(t, "GET", front.URL+"/", "", "X-Merchant", "m1")
	var home *upstream
	for _, u := range ups {
		if strings.HasPrefix(first, u.name+" ") {
			home = u
		}
	}
	home.failing.Store(http.StatusServiceUnavailable)
	home.shedding.Store(true)
	for i := range 5 {
		req, _ := http.NewRequest("POST", front.URL+"/v1/events", strings.NewReader(fmt.Sprint("batch-", i)))
		req.Header.Set("X-Merchant", "m1")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "5" {
			t.Errorf("POST %d to a shedding upstream: %d, Retry-After %q; want 503 with Retry-After 5", i, resp.StatusCode, resp.Header.Get("Retry-After"))
		}
	}
	for _, u := range ups {
		u.mu.Lock()
		n := 0
		for _, b := range u.bodies {
			if strings.HasPrefix(b, "batch-") {
				n++
			}
		}
		u.mu.Unlock()
		if want := map[bool]int{true: 5, false: 0}[u == home]; n != want {
			t.Errorf("upstream %s received %d of the 5 batches, want %d", u.name, n, want)
		}
	}
	if s := statusOf(bal, home.srv.URL); s.Ejected || s.Failures != 0 {
		t.Errorf("shedding upstream: %+v; want neither ejected nor failing", s)
	}
	// A GET may try another upstream.
	if code, body := do(t, "GET", front.URL+"/v1/metrics/orders", "", "X-Merchant", "m1"); code != 200 || strings.HasPrefix(body, home.name+" ") {
		t.Errorf("GET while the merchant's upstream sheds: %d %q, want another upstream's answer", code, body)
	}
	// Once it recovers, the merchant's writes land where they did.
	home.failing.Store(0)
	if code, body := do(t, "POST", front.URL+"/v1/events", "after", "X-Merchant", "m1"); code != 200 || !strings.HasPrefix(body, home.name+" ") {
		t.Errorf("POST after recovery: %d %q, want %s", code, body, home.name)
	}
}

func TestProxyBodyOverLimitIsNotRetried(t *testing.T) {
	a, b := newUpstream(t, "a"), newUpstream(t, "b")
	front, _ := setup(t, balancer.RoundRobin(), &balancer.Options[*url.URL]{ConsecutiveFailures: -1}, &proxy.Options{MaxBufferedBody: 8, Retryable: retryPut}, a, b)
	a.failing.Store(http.StatusServiceUnavailable)
	codes := map[int]int{}
	for range 4 {
		code, _ := do(t, "PUT", front.URL+"/big", "0123456789abcdef")
		codes[code]++
	}
	if codes[503] != 2 || codes[200] != 2 {
		t.Errorf("PUT with a body over the limit: %v, want 2 failures passed through, 2 successes", codes)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, body := range b.bodies {
		if body != "0123456789abcdef" {
			t.Errorf("streamed body arrived as %q", body)
		}
	}
}

func TestProxyDeadUpstream502And503(t *testing.T) {
	a := newUpstream(t, "a")
	front, bal := setup(t, balancer.RoundRobin(), &balancer.Options[*url.URL]{ConsecutiveFailures: 1, MaxEjectionPercent: 100, PanicThreshold: -1}, nil, a)
	a.srv.Close() // connection refused from now on
	code, body := do(t, "GET", front.URL+"/", "")
	if code != http.StatusBadGateway || !strings.Contains(body, "upstream failed") || !strings.Contains(body, a.srv.URL) {
		t.Errorf("GET to a dead upstream: %d %q", code, body)
	}
	code, body = do(t, "GET", front.URL+"/", "")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "no healthy upstream") || !strings.Contains(body, "ejected") {
		t.Errorf("GET with the only upstream ejected: %d %q", code, body)
	}
	bal.Remove(a.srv.URL)
	code, body = do(t, "GET", front.URL+"/", "")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "no backends registered") {
		t.Errorf("GET with no upstream: %d %q", code, body)
	}
}

func TestProxyRetriesConnectionRefused(t *testing.T) {
	a, b := newUpstream(t, "a"), newUpstream(t, "b")
	front, _ := setup(t, balancer.RoundRobin(), &balancer.Options[*url.URL]{ConsecutiveFailures: -1}, nil, a, b)
	a.srv.Close()
	for range 6 {
		if code, body := do(t, "GET", front.URL+"/", ""); code != 200 || !strings.HasPrefix(body, "b ") {
			t.Fatalf("GET with a down: %d %q", code, body)
		}
	}
}

func TestProxyAffinity(t *testing.T) {
	ups := []*upstream{newUpstream(t, "a"), newUpstream(t, "b"), newUpstream(t, "c"), newUpstream(t, "d")}
	front, _ := setup(t, balancer.ConsistentHash(nil), nil, &proxy.Options{Key: proxy.HeaderKey("X-Merchant")}, ups...)
	for m := range 20 {
		merchant := fmt.Sprint("m", m)
		_, first := do(t, "GET", front.URL+"/", "", "X-Merchant", merchant)
		for range 3 {
			if _, body := do(t, "GET", front.URL+"/", "", "X-Merchant", merchant); body[:1] != first[:1] {
				t.Fatalf("merchant %s went to %s, then %s", merchant, first[:1], body[:1])
			}
		}
	}
}

func TestProxyActiveHealthChecks(t *testing.T) {
	a, b := newUpstream(t, "a"), newUpstream(t, "b")
	front, bal := setup(t, balancer.RoundRobin(), &balancer.Options[*url.URL]{
		Probe: proxy.Probe(nil, "/healthz"), CheckInterval: -1, Fall: 1, Rise: 1, PanicThreshold: -1,
	}, nil, a, b)
	b.failing.Store(500)
	bal.CheckHealth(context.Background())
	if s := statusOf(bal, b.srv.URL); s.Healthy || !strings.Contains(s.LastProbeError, "503") {
		t.Fatalf("b after a failed probe: %+v", s)
	}
	hits := b.hits.Load()
	for range 6 {
		if code, _ := do(t, "GET", front.URL+"/", ""); code != 200 {
			t.Fatalf("GET: %d", code)
		}
	}
	if b.hits.Load() != hits {
		t.Error("unhealthy upstream got requests")
	}
	b.failing.Store(0)
	bal.CheckHealth(context.Background())
	if !statusOf(bal, b.srv.URL).Healthy {
		t.Fatal("b still unhealthy after a passed probe")
	}
}

func TestBackendsRejectsRelativeURL(t *testing.T) {
	if _, err := proxy.Backends("localhost:8080"); err == nil {
		t.Error("a URL without a scheme was accepted")
	}
}
