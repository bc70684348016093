package main

import (
	"errors"
	"testing"
	"time"

	"github.com/hourglass-io/hourglass/httpapi"
	"github.com/hourglass-io/hourglass/tsstore"
)

// FuzzDecodeEvent: an event either is refused, or becomes one valid point
// of the request's merchant, of an event type, in the engine's window, that
// the processor accepts.
func FuzzDecodeEvent(f *testing.F) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, s := range []string{
		`{"type":"order","amount":12.5,"currency":"EUR","status":"paid"}`,
		`{"type":"refund","amount":1,"currency":"USD","country":"DE","device":"mobile","time":"2026-01-02T03:00:00Z"}`,
		`{"type":"page_view","path":"/a/b","time":1767322800000}`,
		`{"type":"order","amount":0,"currency":"GBP"}`,
		`{}`, `{"type":"order","amount":-1}`, `{"type":"x"}`, `1`, `{"type":"order","amount":1e400}`,
		`{"type":"page_view","path":"/","merchant":"other"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ps, err := decodeEvent(nil, b, "m1", now)
		if err != nil {
			return
		}
		if len(ps) != 1 {
			t.Fatalf("%d points of one event", len(ps))
		}
		p := ps[0]
		switch p.Metric {
		case eventOrder, eventRefund, eventPageView:
		default:
			t.Fatalf("event point of metric %q", p.Metric)
		}
		if err := p.Validate(); err != nil {
			t.Fatalf("invalid point: %v", err)
		}
		if p.Labels.Get("merchant") != "m1" {
			t.Fatalf("point of merchant %q", p.Labels.Get("merchant"))
		}
		if err := httpapi.CheckTime(p.Timestamp, now); err != nil {
			t.Fatal(err)
		}
		if _, err := (eventsProcessor{}).Process(nil, p); err != nil && !errors.Is(err, tsstore.ErrInvalid) {
			t.Fatalf("processor: %v", err)
		}
	})
}
