package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/hourglass-io/hourglass/tsstore"
)

// errorBody is the JSON of every error answer. Message and Code repeat Error
// in the form InfluxDB 2.x clients read.
type errorBody struct {
	Error   string `json:"error"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Error answers status with the JSON error body of the API:
// {"error": msg, "code": <InfluxDB 2.x code of status>, "message": msg}.
func Error(w http.ResponseWriter, status int, msg string) {
	code := "internal error"
	switch {
	case status == http.StatusBadRequest:
		code = "invalid"
	case status == http.StatusUnauthorized:
		code = "unauthorized"
	case status == http.StatusForbidden:
		code = "forbidden"
	case status == http.StatusNotFound:
		code = "not found"
	case status == http.StatusConflict:
		code = "conflict"
	case status == http.StatusRequestEntityTooLarge:
		code = "request too large"
	case status == http.StatusUnsupportedMediaType:
		code = "unsupported media type"
	case status == http.StatusTooManyRequests:
		code = "too many requests"
	case status == http.StatusServiceUnavailable:
		code = "unavailable"
	case status == http.StatusNotImplemented:
		code = "not implemented"
	}
	WriteJSON(w, status, errorBody{Error: msg, Code: code, Message: msg})
}

// WriteJSON answers status with v as JSON.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// WriteError answers err with the status of its kind and returns the
// status: 400 for tsstore.ErrInvalid, 409 for ErrConflict, 503 with
// Retry-After for ErrBackPressure and ErrUnavailable, 503 "shutting down"
// for ErrClosed and a canceled context, 500 for anything else.
func WriteError(w http.ResponseWriter, err error) int {
	k := classify(err)
	msg := err.Error()
	switch k {
	case kindBackPressure, kindUnavailable:
		w.Header().Set("Retry-After", "5")
	case kindClosed:
		msg = "shutting down"
	}
	Error(w, k.status(), msg)
	return k.status()
}

// errorKind is how an engine error is answered.
type errorKind int

const (
	kindInternal errorKind = iota
	kindInvalid
	kindConflict
	kindBackPressure
	kindClosed
	kindUnavailable // a store's or another backend's failure
)

// classify returns the kind of err, the first of the kinds it wraps in
// the order of the constants above (after kindInternal).
func classify(err error) errorKind {
	switch {
	case errors.Is(err, tsstore.ErrInvalid):
		return kindInvalid
	case errors.Is(err, tsstore.ErrConflict):
		return kindConflict
	case errors.Is(err, tsstore.ErrBackPressure):
		return kindBackPressure
	case errors.Is(err, tsstore.ErrClosed), errors.Is(err, context.Canceled):
		return kindClosed
	case errors.Is(err, tsstore.ErrUnavailable):
		return kindUnavailable
	}
	return kindInternal
}

func (k errorKind) status() int {
	switch k {
	case kindInvalid:
		return http.StatusBadRequest
	case kindConflict:
		return http.StatusConflict
	case kindBackPressure, kindClosed, kindUnavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// retryAfter formats a wait as whole seconds, at least 1.
func retryAfter(d time.Duration) string {
	return strconv.Itoa(int(math.Max(1, math.Ceil(d.Seconds()))))
}
