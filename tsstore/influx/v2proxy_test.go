package influx_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// v2Proxy is a test-only front for the InfluxDB 1.6 test server, which has
// no /api/v2/write: it maps /api/v2/write?bucket=db/rp&precision=p onto
// /write?db=db&rp=rp&precision=p and passes everything else through, so the
// storage stays the real server. fault, when set, may answer a request
// itself (returning true) to inject failures.
type v2Proxy struct {
	*httptest.Server
	v2Writes atomic.Int64 // /api/v2/write requests forwarded
	gzipped  atomic.Int64 // of them, gzip-encoded

	mu     sync.Mutex
	fault  func(w http.ResponseWriter, r *http.Request) bool
	writes []time.Time // arrival of every write request, faulted or not
}

func newV2Proxy(t testing.TB, target string) *v2Proxy {
	t.Helper()
	tu, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	transport := &http.Transport{}
	client := &http.Client{Transport: transport}
	// forward passes a request on to the real server (a plain copy: the
	// answer is streamed until the server ends it).
	forward := func(w http.ResponseWriter, r *http.Request) {
		out, err := http.NewRequest(r.Method, tu.JoinPath(r.URL.Path).String()+"?"+r.URL.RawQuery, r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		out.Header = r.Header.Clone()
		out.ContentLength = r.ContentLength
		resp, err := client.Do(out)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		for k, vs := range resp.Header {
			w.Header()[k] = vs
		}
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
	}
	p := &v2Proxy{}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		isWrite := r.URL.Path == "/api/v2/write" || r.URL.Path == "/write"
		p.mu.Lock()
		fault := p.fault
		if isWrite {
			p.writes = append(p.writes, time.Now())
		}
		p.mu.Unlock()
		if fault != nil && fault(w, r) {
			return
		}
		if r.URL.Path == "/api/v2/write" {
			q := r.URL.Query()
			db, rpName, _ := strings.Cut(q.Get("bucket"), "/")
			nq := url.Values{"db": {db}, "precision": {q.Get("precision")}}
			if rpName != "" {
				nq.Set("rp", rpName)
			}
			r.URL.Path, r.URL.RawQuery = "/write", nq.Encode()
			p.v2Writes.Add(1)
			if r.Header.Get("Content-Encoding") == "gzip" {
				p.gzipped.Add(1)
			}
		}
		forward(w, r)
	}))
	t.Cleanup(func() {
		p.Close()
		transport.CloseIdleConnections()
	})
	return p
}

func (p *v2Proxy) setFault(f func(w http.ResponseWriter, r *http.Request) bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fault = f
	p.writes = nil
}

func (p *v2Proxy) writeTimes() []time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]time.Time(nil), p.writes...)
}
