package httpapi

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"time"

	"github.com/hourglass-io/hourglass/tsstore"
)

// The framing of /v1/events as it was before the scanner (encoding/json's
// Decoder and json.RawMessage): the baseline of BenchmarkEventFraming and
// the oracle of TestFramingAgreesWithEncodingJSON.

// parseEventsJSONReflect parses a JSON array of events for merchant into raw points
// with decode. Errors are of kind tsstore.ErrInvalid and name the event's
// index (from 0).
func parseEventsJSONReflect(body []byte, decode EventDecoder, merchant string, now time.Time) ([]tsstore.Point, error) {
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

// parseEventsNDJSONReflect parses newline-delimited JSON events (one object per
// line; blank lines are skipped). Errors name the line (from 1).
func parseEventsNDJSONReflect(body []byte, decode EventDecoder, merchant string, now time.Time) ([]tsstore.Point, error) {
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
