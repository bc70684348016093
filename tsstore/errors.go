package tsstore

import (
	"context"
	"errors"
	"fmt"
)

// The error kinds. Errors returned by hourglass packages wrap exactly one of
// these when their cause is known; test with errors.Is.
var (
	// ErrInvalid reports bad input: a malformed name, a non-finite value,
	// a query whose range is empty. Retrying the same input fails again.
	// Nothing of a rejected write is kept.
	ErrInvalid = errors.New("invalid input")
	// ErrUnavailable reports that a backend could not be reached or
	// answered with a transient failure. The operation may be retried.
	ErrUnavailable = errors.New("unavailable")
	// ErrConflict reports a write that contradicts stored data, such as a
	// cell identity written again with a different aggregate.
	ErrConflict = errors.New("conflict")
	// ErrClosed reports use of a closed object.
	ErrClosed = errors.New("closed")
	// ErrBackPressure reports that a bound was reached (a full cache, an
	// exhausted budget). Nothing was kept; retry after a while.
	ErrBackPressure = errors.New("back-pressure")
)

// ErrFenced is wrapped, together with the kind ErrConflict, by the errors of
// writes refused because the writer was fenced by a newer epoch (see package
// replicate). The refusal is about the writer, not the cells: the same cells
// written by the writer of the newer epoch are accepted, so a write-back
// engine retries them rather than quarantining them.
var ErrFenced = errors.New("fenced")

// Errorf formats an error of the given kind: the result wraps kind and any
// %w operands of format, so errors.Is matches both.
func Errorf(kind error, format string, args ...any) error {
	return &kindError{kind: kind, err: fmt.Errorf(format, args...)}
}

type kindError struct {
	kind error
	err  error
}

func (e *kindError) Error() string   { return e.err.Error() + " (" + e.kind.Error() + ")" }
func (e *kindError) Unwrap() []error { return []error{e.kind, e.err} }

// IsRetryable reports whether err is worth retrying: it is of kind
// ErrUnavailable or ErrBackPressure and not a context cancellation.
func IsRetryable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	return errors.Is(err, ErrUnavailable) || errors.Is(err, ErrBackPressure)
}
