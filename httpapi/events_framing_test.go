package httpapi

import (
	"errors"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/hourglass-io/hourglass/tsstore"
)

// TestFramingAgreesWithEncodingJSON: on random bodies of events (valid and
// invalid events, non-objects, truncated or damaged bodies, as a JSON array
// and as NDJSON), the scanner's framing gives the same points as the
// encoding/json framing it replaced, or both refuse the body.
func TestFramingAgreesWithEncodingJSON(t *testing.T) {
	events := []string{
		`{"metric":"views","value":1}`, ` {"metric":"views","value":2,"labels":{"page":"/a"}} `,
		`{"metric":"orders","value":3.5,"time":1767225600000}`, `{"metric":"v\u0069ews","value":4}`,
		`{"metric":1}`, `[1]`, `"x"`, `null`, `{"metric":"views","value":1`, `{}`, "{\n\"metric\":\"views\",\n\"value\":5}",
	}
	now := time.UnixMilli(1767225600000 + 60_000)
	rapid.Check(t, func(t *rapid.T) {
		evs := rapid.SliceOfN(rapid.SampledFrom(events), 0, 5).Draw(t, "events")
		bodies := map[bool]string{
			false: "[" + strings.Join(evs, rapid.SampledFrom([]string{",", ", ", ",\n"}).Draw(t, "comma")) + "]",
			true:  strings.Join(evs, rapid.SampledFrom([]string{"\n", "\n\n", "\r\n"}).Draw(t, "newline")),
		}
		for ndjson, body := range bodies {
			switch rapid.IntRange(0, 3).Draw(t, "damage") {
			case 1:
				body = body[:rapid.IntRange(0, len(body)).Draw(t, "cut")]
			case 2:
				at := rapid.IntRange(0, len(body)).Draw(t, "at")
				body = body[:at] + rapid.SampledFrom([]string{"}", "]", ",", "x", " "}).Draw(t, "extra") + body[at:]
			}
			got, err := DecodeEvents([]byte(body), ndjson, decodeTestEvent, "m1", now)
			old := parseEventsJSONReflect
			if ndjson {
				old = parseEventsNDJSONReflect
			}
			want, werr := old([]byte(body), decodeTestEvent, "m1", now)
			// The old NDJSON framing let a '}' or ']' follow a line's value
			// (json.Decoder.More): the scanner refuses it.
			lax := ndjson && werr == nil && err != nil && strings.Contains(err.Error(), "more than one JSON value")
			if lax {
				continue
			}
			if (err == nil) != (werr == nil) || len(got) != len(want) {
				t.Fatalf("ndjson %v, body %q: scanner %d points, %v; encoding/json %d points, %v", ndjson, body, len(got), err, len(want), werr)
			}
			for i := range got {
				if got[i].Metric != want[i].Metric || got[i].Value != want[i].Value || !got[i].Labels.Equal(want[i].Labels) || got[i].Timestamp != want[i].Timestamp {
					t.Fatalf("body %q: point %d %v, want %v", body, i, got[i], want[i])
				}
			}
			if err != nil && !errors.Is(err, tsstore.ErrInvalid) {
				t.Fatalf("body %q: error not of kind ErrInvalid: %v", body, err)
			}
		}
	})
}
