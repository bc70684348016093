package promremote

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/hourglass-io/hourglass/tsstore"
)

// request is one HTTP request of a Store, sent again on a retry.
type request struct {
	method, url string
	body        []byte
	header      http.Header // besides the Store's auth and Options.Headers
}

// failure is the last failed attempt of a request: a connection error
// (status 0) or an answer other than 2xx.
type failure struct {
	status     int
	msg        string // the answer's body, shortened
	retryAfter time.Duration
	err        error
}

func (f *failure) retryable() bool {
	return f.status == 0 || f.status == http.StatusTooManyRequests || f.status >= 500
}

func (f *failure) Error() string {
	if f.status == 0 {
		return f.err.Error()
	}
	return fmt.Sprintf("HTTP %d: %s", f.status, f.msg)
}

func (f *failure) Unwrap() error { return f.err }

// kind is the tsstore error kind of a final failure: a 4xx answer means
// the request itself is refused (ErrInvalid), except for 401, 403 and 404
// (the store's configuration: its URL or credentials, which an operator
// fixes) and 429; connection errors and 5xx are ErrUnavailable.
func (f *failure) kind() error {
	switch {
	case f.status >= 400 && f.status < 500 && f.status != http.StatusUnauthorized && f.status != http.StatusForbidden &&
		f.status != http.StatusNotFound && f.status != http.StatusTooManyRequests:
		return tsstore.ErrInvalid
	}
	return tsstore.ErrUnavailable
}

// do sends r, retrying connection errors, 429 and 5xx with backoff, and
// returns the body of the 2xx answer. It returns a *failure after the
// last retry, or ctx's error.
func (s *Store) do(ctx context.Context, r request) ([]byte, error) {
	for attempt := 0; ; attempt++ {
		body, f := s.attempt(ctx, r)
		if f == nil {
			return body, nil
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if !f.retryable() || attempt >= s.maxRetries {
			if attempt > 0 {
				f.msg += fmt.Sprintf(" (after %d retries)", attempt)
			}
			return nil, f
		}
		delay := f.retryAfter
		if delay <= 0 {
			delay = s.backoff(attempt)
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
}

func (s *Store) attempt(ctx context.Context, r request) ([]byte, *failure) {
	ctx, cancel := context.WithTimeout(ctx, s.opts.RequestTimeout)
	defer cancel()
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, r.url, body)
	if err != nil {
		return nil, &failure{status: 400, msg: err.Error(), err: err}
	}
	for k, vs := range r.header {
		req.Header[k] = vs
	}
	s.authorize(req)
	resp, err := s.http.Do(req)
	if err != nil {
		return nil, &failure{err: err}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, &failure{err: fmt.Errorf("reading the answer of %s: %w", r.url, err)}
	}
	if resp.StatusCode/100 == 2 {
		return data, nil
	}
	f := &failure{status: resp.StatusCode, msg: shorten(strings.TrimSpace(string(data)), 512)}
	if secs, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && secs > 0 {
		f.retryAfter = time.Duration(secs) * time.Second
	}
	return nil, f
}

// authorize adds the Store's credentials and extra headers to req.
func (s *Store) authorize(req *http.Request) {
	switch {
	case s.opts.BearerToken != "":
		req.Header.Set("Authorization", "Bearer "+s.opts.BearerToken)
	case s.opts.Username != "":
		req.SetBasicAuth(s.opts.Username, s.opts.Password)
	}
	for k, v := range s.opts.Headers {
		req.Header.Set(k, v)
	}
}

// backoff returns the delay before retry attempt+1: RetryInterval doubled
// per attempt, capped at MaxRetryInterval, with jitter in [d/2, d].
func (s *Store) backoff(attempt int) time.Duration {
	d := s.opts.RetryInterval
	for i := 0; i < attempt && d < s.opts.MaxRetryInterval; i++ {
		d *= 2
	}
	d = min(d, s.opts.MaxRetryInterval)
	return d/2 + rand.N(d/2+1)
}

func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
