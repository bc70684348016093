package httpretry_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/hourglass-io/hourglass/internal/httpretry"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// server answers the statuses in order (the last one from then on), with
// a Retry-After of retryAfter seconds on non-2xx answers when positive.
func server(t *testing.T, retryAfter int, statuses ...int) (*httptest.Server, *atomic.Int32) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := int(n.Add(1)) - 1
		st := statuses[min(i, len(statuses)-1)]
		if st/100 != 2 && retryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(retryAfter))
		}
		w.WriteHeader(st)
		_, _ = io.WriteString(w, http.StatusText(st))
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

// get is an attempt: a GET of url, its answer turned into a Failure.
func get(ctx context.Context, url string) func() *httpretry.Failure {
	return func() *httpretry.Failure {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return &httpretry.Failure{Status: 400, Msg: err.Error(), Err: err}
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return &httpretry.Failure{Err: err}
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode/100 == 2 {
			return nil
		}
		f := &httpretry.Failure{Status: resp.StatusCode, Msg: string(body)}
		if secs, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil {
			f.RetryAfter = time.Duration(secs) * time.Second
		}
		return f
	}
}

var quick = httpretry.Policy{MaxRetries: 3, Interval: time.Millisecond, MaxInterval: 4 * time.Millisecond}

func TestRetriesUntilSuccess(t *testing.T) {
	srv, n := server(t, 0, 503, 429, 200)
	f, retries, err := quick.Do(t.Context(), get(t.Context(), srv.URL))
	if f != nil || err != nil || retries != 2 || n.Load() != 3 {
		t.Fatalf("Do = %v, %d, %v after %d requests; want nil, 2, nil after 3", f, retries, err, n.Load())
	}
}

func TestGivesUp(t *testing.T) {
	srv, n := server(t, 0, 500)
	f, retries, err := quick.Do(t.Context(), get(t.Context(), srv.URL))
	if err != nil || f == nil || f.Status != 500 || retries != 3 || n.Load() != 4 {
		t.Fatalf("Do = %v, %d, %v after %d requests; want HTTP 500, 3, nil after 4", f, retries, err, n.Load())
	}
	if got, want := f.Error(), "HTTP 500: Internal Server Error"; got != want {
		t.Fatalf("Error() = %q, want %q", got, want)
	}
}

func TestNotRetryable(t *testing.T) {
	for _, st := range []int{400, 401, 404, 409} {
		srv, n := server(t, 0, st)
		f, retries, err := quick.Do(t.Context(), get(t.Context(), srv.URL))
		if err != nil || f == nil || f.Status != st || f.Retryable() || retries != 0 || n.Load() != 1 {
			t.Fatalf("%d: Do = %v, %d, %v after %d requests; want one attempt", st, f, retries, err, n.Load())
		}
	}
}

func TestConnectionError(t *testing.T) {
	srv, _ := server(t, 0, 200)
	url := srv.URL
	srv.Close()
	p := httpretry.Policy{MaxRetries: 1, Interval: time.Millisecond, MaxInterval: time.Millisecond}
	f, retries, err := p.Do(t.Context(), get(t.Context(), url))
	if err != nil || f == nil || f.Status != 0 || !f.Retryable() || retries != 1 {
		t.Fatalf("Do = %v, %d, %v; want a connection failure after 1 retry", f, retries, err)
	}
	if f.Error() != f.Err.Error() || !errors.Is(f, f.Err) {
		t.Fatalf("a connection failure reads %q and unwraps to %v", f.Error(), f.Unwrap())
	}
}

// With a backoff of an hour, only the answer's Retry-After (1s) lets the
// retry happen before the test's deadline.
func TestRetryAfter(t *testing.T) {
	srv, n := server(t, 1, 503, 200)
	p := httpretry.Policy{MaxRetries: 1, Interval: time.Hour, MaxInterval: time.Hour}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	f, retries, err := p.Do(ctx, get(ctx, srv.URL))
	if f != nil || err != nil || retries != 1 || n.Load() != 2 {
		t.Fatalf("Do = %v, %d, %v after %d requests; want nil, 1, nil after 2", f, retries, err, n.Load())
	}
}

// TestRetryAfterHeader: both forms of Retry-After, delay-seconds and an
// HTTP-date; anything else, or no delay, is 0 (the caller's backoff).
func TestRetryAfterHeader(t *testing.T) {
	now := time.Date(2026, 12, 5, 3, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		v    string
		want time.Duration
	}{
		{"120", 2 * time.Minute},
		{" 3 ", 3 * time.Second},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{now.Add(30 * time.Second).Format(time.RFC850), 30 * time.Second},
		{now.Add(5 * time.Second).Format(time.ANSIC), 5 * time.Second},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0},
		{"0", 0},
		{"-5", 0},
		{"99999999999999999999", 0},
		{"soon", 0},
		{"", 0},
	} {
		if got := httpretry.RetryAfter(c.v, now); got != c.want {
			t.Errorf("RetryAfter(%q) = %v, want %v", c.v, got, c.want)
		}
	}
}

func TestContextEndsAfterAttempt(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	f, retries, err := quick.Do(ctx, func() *httpretry.Failure {
		cancel()
		return &httpretry.Failure{Status: 503}
	})
	if f != nil || retries != 0 || !errors.Is(err, context.Canceled) {
		t.Fatalf("Do = %v, %d, %v; want nil, 0, canceled", f, retries, err)
	}
}

func TestContextEndsWhileWaiting(t *testing.T) {
	p := httpretry.Policy{MaxRetries: 5, Interval: time.Hour, MaxInterval: time.Hour}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	attempts := 0
	f, retries, err := p.Do(ctx, func() *httpretry.Failure {
		attempts++
		// Canceled once Do waits: it checks ctx right after this returns,
		// long before an hour.
		go func() {
			time.Sleep(50 * time.Millisecond)
			cancel()
		}()
		return &httpretry.Failure{Status: 503, Msg: "busy"}
	})
	if attempts != 1 || retries != 0 || f == nil || f.Msg != "busy" || !errors.Is(err, context.Canceled) {
		t.Fatalf("Do = %v, %d, %v after %d attempts; want the 503 waited after, 0, canceled", f, retries, err, attempts)
	}
}

func TestBackoff(t *testing.T) {
	p := httpretry.Policy{Interval: 100 * time.Millisecond, MaxInterval: time.Second}
	for attempt, d := range []time.Duration{100, 200, 400, 800, 1000, 1000} {
		d *= time.Millisecond
		for range 20 {
			if got := p.Backoff(attempt); got < d/2 || got > d {
				t.Fatalf("Backoff(%d) = %v, not in [%v, %v]", attempt, got, d/2, d)
			}
		}
	}
}
