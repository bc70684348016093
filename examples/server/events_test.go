package main

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/hourglass-io/hourglass/httpapi"
	"github.com/hourglass-io/hourglass/tsstore"
)

var testNow = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// genEvent makes an event's JSON, mostly of the server's fields with
// plausible values, with wrong kinds, nulls, duplicates, escapes, other
// cases of keys, unknown fields and broken bytes now and then.
func genEvent(t *rapid.T) string {
	keys := map[string][]string{
		"type":     {`"order"`, `"refund"`, `"page_view"`, `"pag\u0065_view"`, `""`, `"click"`, `1`, `null`},
		"amount":   {`12.5`, `0`, `-0`, `-1`, `1e400`, `1e13`, `"12"`, `null`, `true`, `3E2`},
		"currency": {`"EUR"`, `"USD"`, `"eur"`, `"EURO"`, `"\u0045UR"`, `null`, `7`},
		"status":   {`"paid"`, `"pending"`, `"cancelled"`, `"lost"`, `""`, `null`, `[]`},
		"path":     {`"/"`, `"/p/001"`, `"/a?b=1"`, `"p"`, `"\/products\/42"`, `"/é"`, `"/` + strings.Repeat("x", 256) + `"`, `{}`},
		"country":  {`"DE"`, `"de"`, `"DEU"`, `null`, `""`},
		"device":   {`"mobile"`, `"tablet"`, `"phone"`, `""`, `false`},
		"time": {fmt.Sprint(testNow.Add(-time.Hour).UnixMilli()), fmt.Sprint(testNow.Add(-30 * 24 * time.Hour).UnixMilli()),
			`"2026-01-02T02:00:00Z"`, `"2026-01-02T04:00:00+02:00"`, `"yesterday"`, `1.5e12`, `null`, `99999999999999999999`, `true`},
	}
	names := []string{"type", "amount", "currency", "status", "path", "country", "device", "time", "Type", "CURRENCY", "ſtatus", "colour", "typ\\u0065", "merchant"}
	var b strings.Builder
	b.WriteString(rapid.SampledFrom([]string{"{", " {", "{\n"}).Draw(t, "open"))
	// Most events start valid, for the fields after to change them.
	base := rapid.SampledFrom([]string{"", `"type":"order","amount":5,"currency":"EUR","status":"pending"`,
		`"type":"page_view","path":"/p/7","country":"FR"`, `"type":"refund","amount":1,"currency":"GBP","time":"2026-01-02T03:00:00Z"`}).Draw(t, "base")
	b.WriteString(base)
	for i := range rapid.IntRange(0, 4).Draw(t, "fields") {
		if i > 0 || base != "" {
			b.WriteString(rapid.SampledFrom([]string{",", ", "}).Draw(t, "comma"))
		}
		name := rapid.SampledFrom(names).Draw(t, "name")
		canon := strings.ToLower(strings.ReplaceAll(strings.ReplaceAll(name, "ſ", "s"), `\u0065`, "e"))
		vals, ok := keys[canon]
		if !ok {
			vals = []string{`"x"`, `1`}
		}
		fmt.Fprintf(&b, "%q:%s", name, rapid.SampledFrom(vals).Draw(t, "value"))
		if strings.Contains(name, `\`) { // %q doubled the backslash of the escape
			s := b.String()
			b.Reset()
			b.WriteString(strings.Replace(s, `\\u0065`, `\u0065`, 1))
		}
	}
	b.WriteString("}")
	s := b.String()
	if rapid.IntRange(0, 9).Draw(t, "break") == 0 && len(s) > 0 {
		i := rapid.IntRange(0, len(s)-1).Draw(t, "at")
		s = s[:i] + rapid.SampledFrom([]string{"", "\"", "}", ",", "\\", "\x00", " "}).Draw(t, "with") + s[i+1:]
	}
	return s
}

// samePoints reports whether a and b are the same points.
func samePoints(a, b []tsstore.Point) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Metric != b[i].Metric || !a[i].Labels.Equal(b[i].Labels) || a[i].Timestamp != b[i].Timestamp ||
			math.Float64bits(a[i].Value) != math.Float64bits(b[i].Value) {
			return false
		}
	}
	return true
}

// TestDecoderAgreesWithEncodingJSON: on random valid and invalid events,
// the fast decoder makes the point the encoding/json decoder made, or both
// refuse the event; and so does a request of such events (a JSON array or
// NDJSON, split by httpapi, whose TestFramingAgreesWithEncodingJSON checks
// the framing against encoding/json's).
func TestDecoderAgreesWithEncodingJSON(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		ev := genEvent(t)
		got, err := decodeEvent(nil, []byte(ev), "m1", testNow)
		want, werr := decodeEventReflect(nil, []byte(ev), "m1", testNow)
		if (err == nil) != (werr == nil) || !samePoints(got, want) {
			t.Fatalf("%s: fast %v, %v; encoding/json %v, %v", ev, got, err, want, werr)
		}

		evs := rapid.SliceOfN(rapid.Custom(genEvent), 0, 4).Draw(t, "events")
		array := "[" + strings.Join(evs, ",") + "]"
		got, err = httpapi.DecodeEvents([]byte(array), false, decodeEvent, "m1", testNow)
		want, werr = httpapi.DecodeEvents([]byte(array), false, decodeEventReflect, "m1", testNow)
		if (err == nil) != (werr == nil) || !samePoints(got, want) {
			t.Fatalf("array %s: fast %v, %v; encoding/json %v, %v", array, got, err, want, werr)
		}
		if err != nil && !errors.Is(err, tsstore.ErrInvalid) {
			t.Fatalf("array %s: error not of kind ErrInvalid: %v", array, err)
		}
		ndjson := strings.Join(evs, "\n")
		got, err = httpapi.DecodeEvents([]byte(ndjson), true, decodeEvent, "m1", testNow)
		want, werr = httpapi.DecodeEvents([]byte(ndjson), true, decodeEventReflect, "m1", testNow)
		if (err == nil) != (werr == nil) || !samePoints(got, want) {
			t.Fatalf("ndjson %q: fast %v, %v; encoding/json %v, %v", ndjson, got, err, want, werr)
		}
	})
}

// TestInterningKeepsMerchantsApart: one decoder, reused for requests of
// several merchants with the same events, labels each point with its own
// request's merchant.
func TestInterningKeepsMerchantsApart(t *testing.T) {
	d := new(eventDecoder)
	ev := []byte(`{"type":"page_view","path":"/p/1","device":"mobile"}`)
	for round := range 3 {
		for _, m := range []string{"shop-a", "shop-b"} {
			ps, err := d.decode(nil, ev, m, testNow)
			if err != nil {
				t.Fatal(err)
			}
			if got := ps[0].Labels.Get("merchant"); got != m {
				t.Fatalf("round %d: point of merchant %q's request has merchant %q", round, m, got)
			}
		}
	}
}
