package httpapi

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/writeback"
)

// CheckTime checks that ts (ms) is within the engine's default window
// around now (writeback.DefaultMaxLate, DefaultMaxFuture), so that an
// EventDecoder's error names the event or line rather than the engine's
// point index. Line protocol is checked the same way.
func CheckTime(ts int64, now time.Time) error {
	t := tsstore.TimeOf(ts)
	if t.Before(now.Add(-writeback.DefaultMaxLate)) || t.After(now.Add(writeback.DefaultMaxFuture)) {
		return fmt.Errorf("timestamp %s is outside [now-%v, now+%v]", t.Format(time.RFC3339Nano), writeback.DefaultMaxLate, writeback.DefaultMaxFuture)
	}
	return nil
}

// DecodeJSON decodes the JSON value b into v strictly, as an EventDecoder
// wants it: unknown fields are refused, and the error reads as a client
// needs it (`field "amount": want float64, got string`, `unknown field
// "colour"`), without encoding/json's "json: " prefix.
func DecodeJSON(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return errors.New(jsonMessage(err))
	}
	if dec.More() {
		return errors.New("more than one JSON value")
	}
	return nil
}

// errNoEvents is the error of an empty batch.
var errNoEvents = tsstore.Errorf(tsstore.ErrInvalid, "no events in the request body")

// parseEventsJSON parses a JSON array of events for merchant into raw points
// with decode. Errors are of kind tsstore.ErrInvalid and name the event's
// index (from 0).
func parseEventsJSON(body []byte, decode EventDecoder, merchant string, now time.Time) ([]tsstore.Point, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	tok, err := dec.Token()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errNoEvents
		}
		return nil, tsstore.Errorf(tsstore.ErrInvalid, "body: %s", jsonMessage(err))
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		return nil, tsstore.Errorf(tsstore.ErrInvalid, "body: want a JSON array of events (or NDJSON with Content-Type application/x-ndjson)")
	}
	var points []tsstore.Point
	i := 0
	for ; dec.More(); i++ {
		var e json.RawMessage
		if err := dec.Decode(&e); err != nil {
			return nil, tsstore.Errorf(tsstore.ErrInvalid, "event %d: %s", i, jsonMessage(err))
		}
		if points, err = decodeFor(points, decode, e, merchant, now); err != nil {
			return nil, tsstore.Errorf(tsstore.ErrInvalid, "event %d: %w", i, err)
		}
	}
	if _, err := dec.Token(); err != nil {
		return nil, tsstore.Errorf(tsstore.ErrInvalid, "body after event %d: %s", i-1, jsonMessage(err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, tsstore.Errorf(tsstore.ErrInvalid, "body: data after the array of events")
	}
	if len(points) == 0 {
		return nil, errNoEvents
	}
	return points, nil
}

// decodeFor runs the program's decoder on one event and checks that every
// point it made carries the request's merchant: the isolation of merchants
// must not depend on each EventDecoder getting it right.
func decodeFor(points []tsstore.Point, decode EventDecoder, e json.RawMessage, merchant string, now time.Time) ([]tsstore.Point, error) {
	n := len(points)
	points, err := decode(points, e, merchant, now)
	if err != nil {
		return points, err
	}
	for _, p := range points[n:] {
		if got := p.Labels.Get("merchant"); got != merchant {
			return points, tsstore.Errorf(tsstore.ErrInvalid, "the event decoder made a point %s%s with merchant %q, not the token's %q", p.Metric, p.Labels, got, merchant)
		}
	}
	return points, nil
}

// parseEventsNDJSON parses newline-delimited JSON events (one object per
// line; blank lines are skipped). Errors name the line (from 1).
func parseEventsNDJSON(body []byte, decode EventDecoder, merchant string, now time.Time) ([]tsstore.Point, error) {
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(nil, len(body)+1)
	var points []tsstore.Point
	for line := 1; sc.Scan(); line++ {
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		var e json.RawMessage
		if err := dec.Decode(&e); err != nil {
			return nil, tsstore.Errorf(tsstore.ErrInvalid, "line %d: %s", line, jsonMessage(err))
		}
		if dec.More() {
			return nil, tsstore.Errorf(tsstore.ErrInvalid, "line %d: more than one JSON value", line)
		}
		var err error
		if points, err = decodeFor(points, decode, e, merchant, now); err != nil {
			return nil, tsstore.Errorf(tsstore.ErrInvalid, "line %d: %w", line, err)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, tsstore.Errorf(tsstore.ErrInvalid, "body: %w", err)
	}
	if len(points) == 0 {
		return nil, errNoEvents
	}
	return points, nil
}

// jsonMessage returns err's message without encoding/json's "json: " prefix.
func jsonMessage(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("malformed JSON at byte %d: %s", se.Offset, se.Error())
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("field %q: want %s, got %s", te.Field, te.Type, te.Value)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return "truncated JSON"
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}
