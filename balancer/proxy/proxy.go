package proxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"

	"github.com/hourglass-io/hourglass/balancer"
	"github.com/hourglass-io/hourglass/tsstore"
)

// Defaults of Options.
const (
	DefaultMaxAttempts     = 3
	DefaultMaxBufferedBody = 1 << 20
)

// Options configures a Proxy. A nil *Options means the defaults.
type Options struct {
	// Key returns the affinity key of a request (see HeaderKey); nil
	// means "" (no affinity).
	Key func(*http.Request) string
	// MaxAttempts is the most upstreams one request is sent to; 0 means
	// DefaultMaxAttempts. 1 disables retries.
	MaxAttempts int
	// Retryable reports whether a request may be sent to another upstream
	// after a failed attempt; nil means RetryGetHead (GET and HEAD only).
	// A write must not be retried elsewhere when writes have affinity (one
	// writer per key): the other upstream would become a second writer.
	Retryable func(*http.Request) bool
	// MaxBufferedBody is the largest request body kept in memory so that
	// the request can be retried; a larger body is streamed and its
	// request not retried. 0 means DefaultMaxBufferedBody; negative means
	// never buffer (only requests without a body are retried).
	MaxBufferedBody int64
	// Transport sends the requests to the upstreams; nil means
	// http.DefaultTransport.
	Transport http.RoundTripper
	// ErrorLog receives the proxy's errors; nil means they are not logged.
	ErrorLog *log.Logger
}

// Proxy is an http.Handler that forwards requests to the upstreams of a
// balancer. Create one with New.
type Proxy struct {
	b         *balancer.Balancer[*url.URL]
	key       func(*http.Request) string
	retryable func(*http.Request) bool
	attempts  int
	maxBody   int64
	transport http.RoundTripper
	log       *log.Logger
	rp        *httputil.ReverseProxy
}

var _ http.Handler = (*Proxy)(nil)

// New returns a proxy over the upstreams registered in b (register them
// with Backends). The proxy does not own b.
func New(b *balancer.Balancer[*url.URL], opts *Options) *Proxy {
	var o Options
	if opts != nil {
		o = *opts
	}
	p := &Proxy{
		b: b, key: o.Key, retryable: o.Retryable, attempts: max(o.MaxAttempts, 0), maxBody: o.MaxBufferedBody,
		transport: o.Transport, log: o.ErrorLog,
	}
	if p.attempts == 0 {
		p.attempts = DefaultMaxAttempts
	}
	if p.retryable == nil {
		p.retryable = RetryGetHead
	}
	if p.maxBody == 0 {
		p.maxBody = DefaultMaxBufferedBody
	}
	if p.transport == nil {
		p.transport = http.DefaultTransport
	}
	p.rp = &httputil.ReverseProxy{
		Rewrite:      func(pr *httputil.ProxyRequest) { pr.SetXForwarded() },
		Transport:    roundTripper{p},
		ErrorHandler: p.answerError,
		ErrorLog:     o.ErrorLog,
	}
	return p
}

// HeaderKey returns a Key function that uses the value of a request header,
// such as "X-Merchant".
func HeaderKey(name string) func(*http.Request) string {
	return func(r *http.Request) string { return r.Header.Get(name) }
}

// Backends parses upstream URLs into backends for a Balancer[*url.URL], each
// with its URL as ID and weight 1. Errors are of kind ErrInvalid.
func Backends(urls ...string) ([]balancer.Backend[*url.URL], error) {
	out := make([]balancer.Backend[*url.URL], 0, len(urls))
	for _, s := range urls {
		u, err := url.Parse(s)
		if err != nil || u.Scheme == "" || u.Host == "" {
			return nil, tsstore.Errorf(tsstore.ErrInvalid, "proxy: upstream URL %q is not absolute (%v)", s, err)
		}
		out = append(out, balancer.Backend[*url.URL]{ID: s, Value: u})
	}
	return out, nil
}

// Probe returns an active health check for Options.Probe of the balancer:
// a GET of path on the upstream with client (nil means
// http.DefaultClient), healthy when the answer is 2xx or 3xx.
func Probe(client *http.Client, path string) func(context.Context, *url.URL) error {
	if client == nil {
		client = http.DefaultClient
	}
	return func(ctx context.Context, u *url.URL) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.JoinPath(path).String(), nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		if resp.StatusCode >= 400 {
			return fmt.Errorf("GET %s: %s", req.URL, resp.Status)
		}
		return nil
	}
}

// ServeHTTP forwards r to an upstream, retrying as described in the package
// documentation.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	st := &state{key: "", retry: p.retryable(r)}
	if p.key != nil {
		st.key = p.key(r)
	}
	if r.Body != nil && r.Body != http.NoBody {
		switch {
		case !st.retry || p.maxBody < 0:
			st.retry = false
		default:
			buf, err := io.ReadAll(io.LimitReader(r.Body, p.maxBody+1))
			if err != nil {
				http.Error(w, "proxy: reading the request body: "+err.Error(), http.StatusBadRequest)
				return
			}
			if int64(len(buf)) > p.maxBody {
				// Too large to keep: stream it, once.
				st.retry = false
				r.Body = struct {
					io.Reader
					io.Closer
				}{io.MultiReader(bytes.NewReader(buf), r.Body), r.Body}
			} else {
				st.body = buf
				r.Body = io.NopCloser(bytes.NewReader(buf))
			}
		}
	}
	p.rp.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), stateKey{}, st)))
}

// RetryGetHead is the default Options.Retryable: only GET and HEAD
// requests are retried on another upstream.
func RetryGetHead(r *http.Request) bool {
	return r.Method == http.MethodGet || r.Method == http.MethodHead
}

type stateKey struct{}

// state is what the transport needs to know about the client's request.
type state struct {
	key   string
	retry bool   // idempotent, and the body can be replayed
	body  []byte // the buffered body, if any
}

// noUpstreamError is answered with 503.
type noUpstreamError struct{ err error }

func (e *noUpstreamError) Error() string { return "no healthy upstream: " + e.err.Error() }
func (e *noUpstreamError) Unwrap() error { return e.err }

// upstreamError is answered with 502.
type upstreamError struct {
	tried []string
	err   error
}

func (e *upstreamError) Error() string {
	return fmt.Sprintf("upstream failed (tried %s): %v", strings.Join(e.tried, ", "), e.err)
}
func (e *upstreamError) Unwrap() error { return e.err }

func (p *Proxy) answerError(w http.ResponseWriter, r *http.Request, err error) {
	code := http.StatusBadGateway
	var nu *noUpstreamError
	if errors.As(err, &nu) {
		code = http.StatusServiceUnavailable
	}
	if p.log != nil {
		p.log.Printf("proxy: %s %s: %v", r.Method, r.URL, err)
	}
	http.Error(w, err.Error(), code)
}

type roundTripper struct{ p *Proxy }

// RoundTrip sends the outgoing request to up to p.attempts upstreams.
func (t roundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	p := t.p
	st, _ := req.Context().Value(stateKey{}).(*state)
	if st == nil {
		st = &state{}
	}
	var tried []string
	var last error
	var lastResp *http.Response
	notTried := func(id string, _ *url.URL) bool { return !slices.Contains(tried, id) }
	for attempt := 0; attempt < p.attempts; attempt++ {
		if attempt > 0 && !st.retry {
			break
		}
		if err := req.Context().Err(); err != nil {
			break
		}
		c, err := p.b.PickIf(st.key, notTried)
		if err != nil {
			if attempt == 0 {
				return nil, &noUpstreamError{err}
			}
			break // nothing left to try: answer with the last outcome
		}
		if lastResp != nil {
			lastResp.Body.Close() // the next attempt replaces it
			lastResp = nil
		}
		tried = append(tried, c.ID())
		out := req.Clone(req.Context())
		target := c.Backend()
		out.URL.Scheme, out.URL.Host = target.Scheme, target.Host
		out.URL.Path, out.URL.RawPath = joinPath(target, req.URL)
		if target.RawQuery != "" {
			if out.URL.RawQuery == "" {
				out.URL.RawQuery = target.RawQuery
			} else {
				out.URL.RawQuery = target.RawQuery + "&" + out.URL.RawQuery
			}
		}
		if st.body != nil {
			out.Body = io.NopCloser(bytes.NewReader(st.body))
			out.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(st.body)), nil }
			out.ContentLength = int64(len(st.body))
		}
		resp, err := p.transport.RoundTrip(out)
		if err != nil {
			if req.Context().Err() != nil {
				c.Release() // the client went away: says nothing of the upstream
				return nil, err
			}
			c.Done(err)
			last = fmt.Errorf("%s: %w", c.ID(), err)
			continue
		}
		if resp.StatusCode < 500 {
			resp.Body = &doneBody{ReadCloser: resp.Body, c: c}
			return resp, nil
		}
		status := fmt.Errorf("%s answered %s", c.ID(), resp.Status)
		last = status
		if shedding(resp) {
			// The upstream sheds load on purpose (back-pressure, a
			// rate limit): not a failure, so it is neither ejected nor
			// are its keys moved elsewhere. Its answer, with its
			// Retry-After, goes to the client unless the request may
			// try another upstream.
			if !st.retry {
				resp.Body = &doneBody{ReadCloser: resp.Body, c: c, release: true}
				return resp, nil
			}
			c.Release()
			lastResp = resp
			continue
		}
		if !retryStatus(resp.StatusCode) || !st.retry {
			resp.Body = &doneBody{ReadCloser: resp.Body, c: c, err: status}
			return resp, nil
		}
		c.Done(status)
		lastResp = resp
	}
	if lastResp != nil {
		// Pass the last upstream's own 5xx answer through.
		return lastResp, nil
	}
	if last == nil {
		last = req.Context().Err()
	}
	return nil, &upstreamError{tried: tried, err: last}
}

// shedding reports whether resp is a 503 with Retry-After: load shed on
// purpose by a working upstream.
func shedding(resp *http.Response) bool {
	return resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") != ""
}

func retryStatus(code int) bool {
	return code == http.StatusBadGateway || code == http.StatusServiceUnavailable || code == http.StatusGatewayTimeout
}

// joinPath joins the target's path and the request's, as
// httputil.NewSingleHostReverseProxy does.
func joinPath(target, u *url.URL) (path, rawpath string) {
	if target.Path == "" {
		return u.Path, u.RawPath
	}
	j := target.JoinPath(u.EscapedPath())
	if strings.HasSuffix(u.Path, "/") && !strings.HasSuffix(j.Path, "/") {
		j.Path += "/"
		if j.RawPath != "" {
			j.RawPath += "/"
		}
	}
	return j.Path, j.RawPath
}

// doneBody completes the attempt's Conn when the response body is closed.
type doneBody struct {
	io.ReadCloser
	c       balancer.Conn[*url.URL]
	err     error
	release bool // complete with Release: the outcome says nothing of the upstream
	once    sync.Once
}

func (b *doneBody) Close() error {
	err := b.ReadCloser.Close()
	b.once.Do(func() {
		if b.release {
			b.c.Release()
			return
		}
		b.c.Done(b.err)
	})
	return err
}
