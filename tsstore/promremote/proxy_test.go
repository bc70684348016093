package promremote_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hourglass-io/hourglass/internal/servertest"
	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/tsstore/promremote"
	"github.com/hourglass-io/hourglass/tsstore/storetest"
)

// recordingProxy stands in front of the test VictoriaMetrics single node
// with the URL shapes of a cluster or of Mimir: it maps them onto the
// single node's paths, records every request, and can answer with faults.
type recordingProxy struct {
	*httptest.Server
	rewrite func(path string) (string, bool) // the single node's path; false: 404

	mu   sync.Mutex // guards reqs
	reqs []*http.Request

	// fail, while positive, is decremented by a write request, which is
	// answered with failStatus instead of being forwarded.
	fail       atomic.Int32
	failStatus atomic.Int32
	failBody   atomic.Value // string
}

func newRecordingProxy(t *testing.T, rewrite func(string) (string, bool)) *recordingProxy {
	t.Helper()
	target, err := url.Parse(servertest.VictoriaMetricsURL(t))
	if err != nil {
		t.Fatal(err)
	}
	p := &recordingProxy{rewrite: rewrite}
	p.failBody.Store("")
	rp := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(target)
		path, _ := p.rewrite(r.In.URL.Path)
		r.Out.URL.Path, r.Out.URL.RawPath = path, ""
	}}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.reqs = append(p.reqs, r.Clone(context.Background()))
		p.mu.Unlock()
		if _, ok := p.rewrite(r.URL.Path); !ok {
			http.NotFound(w, r)
			return
		}
		if strings.HasSuffix(r.URL.Path, "/write") || strings.HasSuffix(r.URL.Path, "/push") {
			if p.fail.Add(-1) >= 0 {
				if p.failStatus.Load() == http.StatusTooManyRequests {
					w.Header().Set("Retry-After", "1")
				}
				http.Error(w, p.failBody.Load().(string), int(p.failStatus.Load()))
				return
			}
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(p.Close)
	return p
}

// requests returns the recorded requests whose path has the suffix.
func (p *recordingProxy) requests(suffix string) []*http.Request {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []*http.Request
	for _, r := range p.reqs {
		if strings.HasSuffix(r.URL.Path, suffix) {
			out = append(out, r)
		}
	}
	return out
}

// victoriaCluster maps vminsert's and vmselect's paths of tenant 42, and
// vmstorage's force flush, onto the single node.
func victoriaCluster(path string) (string, bool) {
	switch {
	case path == "/insert/42/prometheus/api/v1/write":
		return "/api/v1/write", true
	case strings.HasPrefix(path, "/select/42/prometheus/api/v1/"):
		return strings.TrimPrefix(path, "/select/42/prometheus"), true
	case path == "/flags", path == "/vmstorage/internal/force_flush":
		return strings.TrimPrefix(path, "/vmstorage"), true
	}
	return "", false
}

// mimir maps Mimir's push and query paths onto the single node (Mimir has
// no export API and no force flush).
func mimir(path string) (string, bool) {
	switch {
	case path == "/api/v1/push":
		return "/api/v1/write", true
	case path == "/prometheus/api/v1/query":
		return "/api/v1/query", true
	}
	return "", false
}

// TestVictoriaClusterURLs runs the conformance suite through vminsert's
// and vmselect's URL shapes with basic auth, flushing through the
// "vmstorage" URL, and checks what the engine saw.
func TestVictoriaClusterURLs(t *testing.T) {
	p := newRecordingProxy(t, victoriaCluster)
	write, read := p.URL+"/insert/42/prometheus/api/v1/write", p.URL+"/select/42/prometheus/"
	_, err := promremote.Open(ctx, write, read, &promremote.Options{ExternalLabels: namespace(t)})
	if !errors.Is(err, tsstore.ErrInvalid) || !strings.Contains(err.Error(), "FlushURLs") {
		t.Fatalf("Open on a VictoriaMetrics cluster without flush URLs: got %v, want ErrInvalid asking for FlushURLs", err)
	}
	opts := &promremote.Options{Username: "hg", Password: "secret", FlushURLs: []string{p.URL + "/vmstorage/internal/force_flush"}}
	storetest.Run(t, func(t *testing.T) tsstore.Store { return openOn(t, write, read, opts) })

	writes := p.requests("/insert/42/prometheus/api/v1/write")
	if len(writes) == 0 {
		t.Fatal("no request reached vminsert's write path")
	}
	for _, r := range writes {
		if u, pw, ok := r.BasicAuth(); !ok || u != "hg" || pw != "secret" {
			t.Fatalf("write without the basic auth: %v", r.Header)
		}
		if r.Header.Get("Content-Encoding") != "snappy" || r.Header.Get("X-Prometheus-Remote-Write-Version") != "0.1.0" || r.Header.Get("Content-Type") != "application/x-protobuf" {
			t.Fatalf("write without remote write 1.0 headers: %v", r.Header)
		}
	}
	if n := len(p.requests("/select/42/prometheus/api/v1/export")); n == 0 {
		t.Error("no read went to vmselect's export API")
	}
	if n := len(p.requests("/vmstorage/internal/force_flush")); n < len(writes) {
		t.Errorf("%d flushes for %d writes: want one after every Write", n, len(writes))
	}
}

// TestMimirURLs runs the conformance suite through Mimir's URL shapes with
// a tenant header and a bearer token; reads go through instant queries.
func TestMimirURLs(t *testing.T) {
	p := newRecordingProxy(t, mimir)
	opts := &promremote.Options{BearerToken: "tok", Headers: map[string]string{"X-Scope-OrgID": "tenant-7"},
		FlushURLs: []string{servertest.VictoriaMetricsURL(t) + "/internal/force_flush"}}
	storetest.Run(t, func(t *testing.T) tsstore.Store {
		s := openOn(t, p.URL+"/api/v1/push", p.URL+"/prometheus/", opts)
		if s.ReadAPI() != promremote.ReadQuery {
			t.Fatalf("read API %v without an export API, want query", s.ReadAPI())
		}
		return s
	})
	pushes := p.requests("/api/v1/push")
	if len(pushes) == 0 {
		t.Fatal("no request reached the push path")
	}
	for _, r := range append(pushes, p.requests("/prometheus/api/v1/query")...) {
		if r.Header.Get("X-Scope-OrgID") != "tenant-7" || r.Header.Get("Authorization") != "Bearer tok" {
			t.Fatalf("%s without the tenant header and token: %v", r.URL.Path, r.Header)
		}
	}
}

// TestWriteFailures: 5xx and 429 are retried (ErrUnavailable once the
// retries are spent), other 4xx fail at once with ErrInvalid naming the
// series, and nothing is left half-written by a retried request.
func TestWriteFailures(t *testing.T) {
	p := newRecordingProxy(t, victoriaCluster)
	write, read := p.URL+"/insert/42/prometheus/api/v1/write", p.URL+"/select/42/prometheus/"
	s := openOn(t, write, read, &promremote.Options{MaxRetries: 2, RetryInterval: time.Millisecond, FlushURLs: []string{p.URL + "/vmstorage/internal/force_flush"}})
	ls := tsstore.Labels{{Name: "merchant", Value: "m-fail"}}
	cell := func(i int64) tsstore.Cell {
		return tsstore.Cell{Metric: "orders", Labels: ls, Start: storetest.Base + i*60_000, Writer: "w1", Agg: tsstore.AggOf(float64(i))}
	}
	count := func() int {
		cs, err := s.Cells(ctx, tsstore.Selector{Metric: "orders", From: storetest.Base, To: storetest.Base + 10*60_000})
		if err != nil {
			t.Fatal(err)
		}
		return len(cs)
	}

	// Two 503s, then success: retried.
	p.failStatus.Store(http.StatusServiceUnavailable)
	p.fail.Store(2)
	if err := s.Write(ctx, []tsstore.Cell{cell(0)}); err != nil {
		t.Fatalf("write after two 503s with two retries: %v", err)
	}
	// A 429 with Retry-After, then success.
	p.failStatus.Store(http.StatusTooManyRequests)
	p.fail.Store(1)
	if err := s.Write(ctx, []tsstore.Cell{cell(1)}); err != nil {
		t.Fatalf("write after a 429: %v", err)
	}
	// Three 503s: the retries are spent.
	p.failStatus.Store(http.StatusServiceUnavailable)
	p.fail.Store(3)
	if err := s.Write(ctx, []tsstore.Cell{cell(2)}); !errors.Is(err, tsstore.ErrUnavailable) {
		t.Fatalf("write after three 503s with two retries: got %v, want ErrUnavailable", err)
	}
	// A 400: not retried, ErrInvalid naming the series.
	p.failStatus.Store(http.StatusBadRequest)
	p.failBody.Store(`out of bounds: series {__name__="orders:count", merchant="m-fail"}`)
	p.fail.Store(1)
	err := s.Write(ctx, []tsstore.Cell{cell(3)})
	if !errors.Is(err, tsstore.ErrInvalid) || tsstore.IsRetryable(err) || !strings.Contains(err.Error(), `merchant="m-fail"`) {
		t.Fatalf("write refused with 400: got %v, want ErrInvalid naming the series", err)
	}
	if p.fail.Load() != 0 {
		t.Errorf("the 400 was retried")
	}
	// The failed cells were not stored; a retry stores them.
	if n := count(); n != 2 {
		t.Errorf("%d cells stored, want the 2 written", n)
	}
	p.fail.Store(0)
	if err := s.Write(ctx, []tsstore.Cell{cell(2), cell(3)}); err != nil {
		t.Fatal(err)
	}
	if n := count(); n != 4 {
		t.Errorf("%d cells stored after the retry, want 4", n)
	}
}
