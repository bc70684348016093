package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/hourglass-io/hourglass/internal/jsonscan"
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

// DecodeEvents decodes the events in body for merchant into raw points with
// decode, as POST /v1/events does: body is a JSON array of events, or with
// ndjson one event per line (blank lines are skipped). Each point must carry
// the label merchant=<merchant>. It fails, of kind tsstore.ErrInvalid, on
// malformed JSON, on an event decode refuses and on a body without events,
// naming the event's index (from 0) or line (from 1) and, for malformed
// JSON, the byte of the body. The body is split in place, without
// encoding/json: decode gets slices of it.
func DecodeEvents(body []byte, ndjson bool, decode EventDecoder, merchant string, now time.Time) ([]tsstore.Point, error) {
	if ndjson {
		return parseEventsNDJSON(nil, body, decode, merchant, now)
	}
	return parseEventsJSON(nil, body, decode, merchant, now)
}

// parseEventsJSON parses a JSON array of events for merchant into raw points
// with decode, appended to dst. Errors are of kind tsstore.ErrInvalid and
// name the event's index (from 0); with an error it returns nil, and
// dst's spare capacity may hold points of the body.
func parseEventsJSON(dst []tsstore.Point, body []byte, decode EventDecoder, merchant string, now time.Time) ([]tsstore.Point, error) {
	i := jsonscan.SkipSpace(body, 0)
	if i == len(body) {
		return nil, errNoEvents
	}
	if body[i] != '[' {
		return nil, tsstore.Errorf(tsstore.ErrInvalid, "body: want a JSON array of events (or NDJSON with Content-Type application/x-ndjson)")
	}
	points, had := dst, len(dst)
	i = jsonscan.SkipSpace(body, i+1)
	if i < len(body) && body[i] == ']' {
		i++
	} else {
		for n := 0; ; n++ {
			end, err := jsonscan.Value(body, i)
			if err != nil {
				return nil, tsstore.Errorf(tsstore.ErrInvalid, "event %d: %w", n, err)
			}
			if points, err = decodeFor(points, decode, body[i:end], merchant, now); err != nil {
				return nil, tsstore.Errorf(tsstore.ErrInvalid, "event %d: %w", n, err)
			}
			if n == 0 {
				points = growFor(points, had, len(body), end-i+1)
			}
			i = jsonscan.SkipSpace(body, end)
			if i == len(body) {
				return nil, tsstore.Errorf(tsstore.ErrInvalid, "body after event %d: truncated JSON at byte %d: the array of events is not closed", n, i)
			}
			if body[i] == ']' {
				i++
				break
			}
			if body[i] != ',' {
				return nil, tsstore.Errorf(tsstore.ErrInvalid, "body after event %d: malformed JSON at byte %d: want ',' or ']'", n, i)
			}
			i = jsonscan.SkipSpace(body, i+1)
		}
	}
	if jsonscan.SkipSpace(body, i) != len(body) {
		return nil, tsstore.Errorf(tsstore.ErrInvalid, "body: data after the array of events, at byte %d", i)
	}
	if len(points) == had {
		return nil, errNoEvents
	}
	return points, nil
}

// growFor makes room in points, which holds after its first had points
// the points of a body's first event of size bytes, for the body's other
// events, if they are alike.
func growFor(points []tsstore.Point, had, body, size int) []tsstore.Point {
	if len(points) == had {
		return points
	}
	return slices.Grow(points, (body/size+1)*(len(points)-had))
}

// decodeFor runs the program's decoder on one event and checks that every
// point it made carries the request's merchant: the isolation of merchants
// must not depend on each EventDecoder getting it right.
func decodeFor(points []tsstore.Point, decode EventDecoder, e []byte, merchant string, now time.Time) ([]tsstore.Point, error) {
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

// parseEventsNDJSON parses newline-delimited JSON events (one value per
// line, whitespace around it ignored; blank lines are skipped), as
// parseEventsJSON does. Errors name the line (from 1).
func parseEventsNDJSON(dst []tsstore.Point, body []byte, decode EventDecoder, merchant string, now time.Time) ([]tsstore.Point, error) {
	points, had := dst, len(dst)
	first := true
	for line, start := 1, 0; start < len(body); line++ {
		end := len(body)
		next := end
		if k := bytes.IndexByte(body[start:], '\n'); k >= 0 {
			end, next = start+k, start+k+1
		}
		from, to := trimSpace(body, start, end)
		start = next
		if from == to {
			continue
		}
		e := body[:to]
		vend, err := jsonscan.Value(e, from)
		if err != nil {
			return nil, tsstore.Errorf(tsstore.ErrInvalid, "line %d: %w", line, err)
		}
		if vend != to {
			return nil, tsstore.Errorf(tsstore.ErrInvalid, "line %d: more than one JSON value (the first ends at byte %d)", line, vend)
		}
		if points, err = decodeFor(points, decode, e[from:], merchant, now); err != nil {
			return nil, tsstore.Errorf(tsstore.ErrInvalid, "line %d: %w", line, err)
		}
		if first {
			points, first = growFor(points, had, len(body), next-from), false
		}
	}
	if len(points) == had {
		return nil, errNoEvents
	}
	return points, nil
}

// trimSpace returns the bounds of body[from:to] without the white space
// (Unicode's, as bytes.TrimSpace) at either end.
func trimSpace(body []byte, from, to int) (int, int) {
	t := bytes.TrimSpace(body[from:to])
	if len(t) == 0 {
		return from, from
	}
	lead := len(body[from:to]) - len(bytes.TrimLeftFunc(body[from:to], unicode.IsSpace))
	return from + lead, from + lead + len(t)
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
