// Package httpretry retries HTTP requests that failed in a way worth
// retrying (a connection error, 429 or 5xx), with exponential backoff or
// the server's Retry-After.
package httpretry

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Failure is a failed attempt of a request: a connection error (Status 0)
// or an answer other than 2xx.
type Failure struct {
	Status     int           // the HTTP status; 0 for a connection error
	Msg        string        // what the answer said
	RetryAfter time.Duration // the answer's Retry-After; 0 if none
	Err        error         // the connection or client error, if any
}

// Retryable reports whether the request may succeed when sent again: a
// connection error, 429 or 5xx.
func (f *Failure) Retryable() bool {
	return f.Status == 0 || f.Status == http.StatusTooManyRequests || f.Status >= 500
}

// Error returns the connection error, or "HTTP <status>: <Msg>".
func (f *Failure) Error() string {
	if f.Status == 0 {
		return f.Err.Error()
	}
	return fmt.Sprintf("HTTP %d: %s", f.Status, f.Msg)
}

// Unwrap returns the connection or client error.
func (f *Failure) Unwrap() error { return f.Err }

// RetryAfter returns the delay a Retry-After header value v asks for:
// delay-seconds ("120") or an HTTP-date ("Fri, 31 Dec 1999 23:59:59 GMT",
// any form http.ParseTime reads) less now. It returns 0, for the caller's
// own backoff, when v is empty or malformed or asks for no delay.
func RetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 || secs > math.MaxInt64/int64(time.Second) {
			return 0
		}
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// Policy is how often and how patiently a request is retried.
type Policy struct {
	MaxRetries  int           // retries after the first attempt; 0: none
	Interval    time.Duration // the delay before the first retry (> 0)
	MaxInterval time.Duration // the cap of the doubled delays (>= Interval)
}

// Backoff returns the delay before retry attempt+1: Interval doubled per
// attempt, capped at MaxInterval, with jitter in [d/2, d].
func (p *Policy) Backoff(attempt int) time.Duration {
	d := p.Interval
	for i := 0; i < attempt && d < p.MaxInterval; i++ {
		d *= 2
	}
	d = min(d, p.MaxInterval)
	return d/2 + rand.N(d/2+1)
}

// Do calls attempt until it returns nil, a Failure that is not retryable,
// or a Failure after MaxRetries retries; it waits the failure's RetryAfter,
// or else Backoff, before each retry. It returns the final Failure (nil
// on success) and the number of retries made. When ctx ends after a failed
// attempt it returns ctx's error instead, and the Failure it was waiting
// to retry, if it was waiting.
func (p *Policy) Do(ctx context.Context, attempt func() *Failure) (f *Failure, retries int, err error) {
	for retries = 0; ; retries++ {
		f = attempt()
		if f == nil {
			return nil, retries, nil
		}
		if err := ctx.Err(); err != nil {
			return nil, retries, err
		}
		if !f.Retryable() || retries >= p.MaxRetries {
			return f, retries, nil
		}
		delay := f.RetryAfter
		if delay <= 0 {
			delay = p.Backoff(retries)
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return f, retries, ctx.Err()
		case <-t.C:
		}
	}
}
