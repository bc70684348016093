package promremote

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/hourglass-io/hourglass/internal/httpretry"
	"github.com/hourglass-io/hourglass/tsstore"
)

// request is one HTTP request of a Store, sent again on a retry.
type request struct {
	method, url string
	body        []byte
	header      http.Header // besides the Store's auth and Options.Headers
}

// kindOf is the tsstore error kind of a final failure: a 4xx answer means
// the request itself is refused (ErrInvalid), except for 401, 403 and 404
// (the store's configuration: its URL or credentials, which an operator
// fixes) and 429; connection errors and 5xx are ErrUnavailable.
func kindOf(f *httpretry.Failure) error {
	switch {
	case f.Status >= 400 && f.Status < 500 && f.Status != http.StatusUnauthorized && f.Status != http.StatusForbidden &&
		f.Status != http.StatusNotFound && f.Status != http.StatusTooManyRequests:
		return tsstore.ErrInvalid
	}
	return tsstore.ErrUnavailable
}

// do sends r, retrying connection errors, 429 and 5xx with backoff, and
// returns the body of the 2xx answer. It returns a *httpretry.Failure
// after the last retry, or ctx's error.
func (s *Store) do(ctx context.Context, r request) ([]byte, error) {
	var body []byte
	f, retries, err := s.retry.Do(ctx, func() (f *httpretry.Failure) {
		body, f = s.attempt(ctx, r)
		return f
	})
	switch {
	case err != nil:
		return nil, err
	case f != nil:
		if retries > 0 {
			f.Msg += fmt.Sprintf(" (after %d retries)", retries)
		}
		return nil, f
	}
	return body, nil
}

func (s *Store) attempt(ctx context.Context, r request) ([]byte, *httpretry.Failure) {
	ctx, cancel := context.WithTimeout(ctx, s.opts.RequestTimeout)
	defer cancel()
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, r.url, body)
	if err != nil {
		return nil, &httpretry.Failure{Status: 400, Msg: err.Error(), Err: err}
	}
	for k, vs := range r.header {
		req.Header[k] = vs
	}
	s.authorize(req)
	resp, err := s.http.Do(req)
	if err != nil {
		return nil, &httpretry.Failure{Err: err}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, &httpretry.Failure{Err: fmt.Errorf("reading the answer of %s: %w", r.url, err)}
	}
	if resp.StatusCode/100 == 2 {
		return data, nil
	}
	f := &httpretry.Failure{Status: resp.StatusCode, Msg: shorten(strings.TrimSpace(string(data)), 512)}
	f.RetryAfter = httpretry.RetryAfter(resp.Header.Get("Retry-After"), time.Now())
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

func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
