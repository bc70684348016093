package promapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"

	"github.com/hourglass-io/hourglass/tsstore"
)

// response is Prometheus' JSON envelope.
type response struct {
	Status    string   `json:"status"`
	Data      any      `json:"data,omitempty"`
	ErrorType string   `json:"errorType,omitempty"`
	Error     string   `json:"error,omitempty"`
	Warnings  []string `json:"warnings,omitempty"`
	Infos     []string `json:"infos,omitempty"`
}

func writeResponse(w http.ResponseWriter, status int, r *response) {
	b, err := json.Marshal(r)
	if err != nil {
		status = http.StatusInternalServerError
		b, _ = json.Marshal(&response{Status: "error", ErrorType: "internal", Error: "encoding the answer: " + err.Error()})
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// badDataError is an error of the request's parameters.
type badDataError struct{ err error }

func (e badDataError) Error() string { return e.err.Error() }
func (e badDataError) Unwrap() error { return e.err }

func badData(err error) error { return badDataError{err} }

// classify returns the Prometheus error type and HTTP status of err.
func classify(err error) (string, int) {
	var (
		bad      badDataError
		timeout  promql.ErrQueryTimeout
		canceled promql.ErrQueryCanceled
		samples  promql.ErrTooManySamples
		stor     promql.ErrStorage
	)
	switch {
	case errors.As(err, &bad), errors.Is(err, tsstore.ErrInvalid):
		return "bad_data", http.StatusBadRequest
	case errors.As(err, &timeout), errors.Is(err, context.DeadlineExceeded):
		return "timeout", http.StatusServiceUnavailable
	case errors.As(err, &canceled), errors.Is(err, context.Canceled):
		return "canceled", http.StatusServiceUnavailable
	case errors.As(err, &samples), errors.Is(err, ErrTooManySamples), errors.Is(err, ErrTooManySeries):
		return "execution", http.StatusUnprocessableEntity
	case errors.Is(err, tsstore.ErrUnavailable), errors.Is(err, tsstore.ErrClosed), errors.Is(err, tsstore.ErrBackPressure):
		return "unavailable", http.StatusServiceUnavailable
	case errors.As(err, &stor):
		return "internal", http.StatusInternalServerError
	}
	return "execution", http.StatusUnprocessableEntity
}

// The bounds Prometheus' clients send for "all time" (client_golang
// formats its MinTime and MaxTime so).
var (
	minTimeFormatted = time.Unix(math.MinInt64/1000+62135596801, 0).UTC().Format(time.RFC3339Nano)
	maxTimeFormatted = time.Unix(math.MaxInt64/1000-62135596801, 999999999).UTC().Format(time.RFC3339Nano)
)

// timeParam reads a time parameter as Prometheus does: Unix seconds with
// a fraction, or RFC 3339. def is the value when it is absent.
func timeParam(r *http.Request, name string, def time.Time) (time.Time, error) {
	s := r.FormValue(name)
	switch s {
	case "":
		return def, nil
	case minTimeFormatted:
		return time.UnixMilli(0).UTC(), nil
	case maxTimeFormatted:
		return tsstore.TimeOf(tsstore.MaxTimestamp - 1), nil
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil && !math.IsNaN(f) && !math.IsInf(f, 0) {
		sec, frac := math.Modf(f)
		return time.Unix(int64(sec), int64(math.Round(frac*1000)*float64(time.Millisecond))).UTC(), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	return time.Time{}, badData(fmt.Errorf("invalid parameter %q: cannot parse %q to a valid timestamp", name, s))
}

// durationParam reads a duration parameter: seconds with a fraction, or a
// Prometheus duration such as 1h30m. It is 0 when absent.
func durationParam(r *http.Request, name string) (time.Duration, error) {
	s := r.FormValue(name)
	if s == "" {
		return 0, nil
	}
	d, err := parseDuration(s)
	if err != nil {
		return 0, badData(fmt.Errorf("invalid parameter %q: %w", name, err))
	}
	return d, nil
}

func parseDuration(s string) (time.Duration, error) {
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		ns := f * float64(time.Second)
		if math.IsNaN(ns) || ns >= math.MaxInt64 || ns < math.MinInt64 {
			return 0, fmt.Errorf("cannot parse %q to a valid duration: it overflows int64", s)
		}
		return time.Duration(ns), nil
	}
	if d, err := model.ParseDuration(s); err == nil {
		return time.Duration(d), nil
	}
	return 0, fmt.Errorf("cannot parse %q to a valid duration", s)
}

func limitParam(r *http.Request) (int, error) {
	s := r.FormValue("limit")
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, badData(fmt.Errorf("invalid parameter \"limit\": %q is not a non-negative integer", s))
	}
	return n, nil
}

func labelsSort(ls []labels.Labels) {
	slices.SortFunc(ls, labels.Compare)
}

// buildInfo is the answer of /api/v1/status/buildinfo: the version of the
// Prometheus whose PromQL engine evaluates the queries (clients such as
// Grafana pick features by it).
var buildInfo = func() map[string]string {
	info := map[string]string{"version": "3.0.0", "revision": "", "branch": "", "buildUser": "", "buildDate": "", "goVersion": runtime.Version()}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return info
	}
	for _, m := range bi.Deps {
		// Module versions v0.3MM.P are Prometheus releases 3.MM.P.
		if m.Path != "github.com/prometheus/prometheus" {
			continue
		}
		parts := strings.SplitN(strings.TrimPrefix(m.Version, "v0."), ".", 2)
		if n, err := strconv.Atoi(parts[0]); err == nil && n >= 300 && len(parts) == 2 {
			info["version"] = fmt.Sprintf("%d.%d.%s", n/100, n%100, parts[1])
		}
	}
	return info
}()
