package s3archive

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/hourglass-io/hourglass/tsstore"
)

// errorResponse returns the S3 error response in err, if any.
func errorResponse(err error) (minio.ErrorResponse, bool) {
	var r minio.ErrorResponse
	if errors.As(err, &r) {
		return r, true
	}
	return r, false
}

// errorCode returns the S3 error code of err ("NoSuchKey",
// "PreconditionFailed", ...), or "".
func errorCode(err error) string {
	r, _ := errorResponse(err)
	return r.Code
}

// Codes of S3 error responses worth retrying: throttling and server-side
// failures.
var retryableCodes = map[string]bool{
	"SlowDown": true, "SlowDownRead": true, "SlowDownWrite": true, "Throttling": true,
	"ThrottlingException": true, "RequestLimitExceeded": true, "RequestThrottled": true,
	"TooManyRequests": true, "InternalError": true, "ServiceUnavailable": true,
	"RequestTimeout": true,
}

// Codes that mean the credentials or the policy refuse the request.
var deniedCodes = map[string]bool{
	"AccessDenied": true, "SignatureDoesNotMatch": true, "InvalidAccessKeyId": true,
	"InvalidToken": true, "ExpiredToken": true, "AllAccessDisabled": true,
}

func denied(err error) bool {
	r, ok := errorResponse(err)
	return ok && (r.StatusCode == http.StatusForbidden || deniedCodes[r.Code])
}

// retryable reports whether a failed request may succeed when tried
// again: throttling (429, SlowDown), 5xx, and failures to reach the server
// or to read its answer (connection refused or reset, a torn body).
func retryable(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	r, ok := errorResponse(err)
	if !ok {
		return true // transport error: refused, reset, EOF, timeout
	}
	if denied(err) {
		return false
	}
	return retryableCodes[r.Code] || r.StatusCode == http.StatusTooManyRequests || r.StatusCode >= 500
}

// try calls fn until it succeeds, fails with an error that is not worth
// retrying, or Options.MaxAttempts attempts have failed, waiting between
// attempts with exponential backoff and full jitter. It returns fn's last
// error as it is (callers look at S3 codes such as NoSuchKey), or ctx's
// error when ctx ends.
func (a *Archive) try(ctx context.Context, fn func(ctx context.Context) error) error {
	wait := a.opts.MinBackoff
	for attempt := 1; ; attempt++ {
		err := fn(ctx)
		if err == nil {
			return nil
		}
		if cerr := ctx.Err(); cerr != nil {
			return cerr
		}
		if attempt >= a.opts.MaxAttempts || !retryable(err) {
			return err
		}
		// Sleep a random time in [wait/2, wait].
		d := wait/2 + rand.N(wait/2+1)
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		wait = min(2*wait, a.opts.MaxBackoff)
	}
}

// fail classifies an error returned by try: a context's error as it is,
// a refusal (403) as ErrAccessDenied, anything else as
// tsstore.ErrUnavailable. The message names the S3 error code and HTTP
// status when the server answered.
func (a *Archive) fail(op string, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	what := ""
	if r, ok := errorResponse(err); ok {
		what = fmt.Sprintf(" %s (HTTP %d)", r.Code, r.StatusCode)
	}
	switch {
	case denied(err):
		return tsstore.Errorf(tsstore.ErrUnavailable, "s3archive %s: %s: %w:%s %w", a.where, op, ErrAccessDenied, what, err)
	case retryable(err):
		return tsstore.Errorf(tsstore.ErrUnavailable, "s3archive %s: %s (%d attempts):%s %w", a.where, op, a.opts.MaxAttempts, what, err)
	default:
		return tsstore.Errorf(tsstore.ErrUnavailable, "s3archive %s: %s:%s %w", a.where, op, what, err)
	}
}
