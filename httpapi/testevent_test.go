package httpapi

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/hourglass-io/hourglass/tsstore"
)

// testEvent is the event format of the tests: a point in JSON.
type testEvent struct {
	Metric string            `json:"metric"`
	Value  float64           `json:"value"`
	Time   *int64            `json:"time"`
	Labels map[string]string `json:"labels"`
}

// decodeTestEvent is the EventDecoder of the tests: one testEvent, one
// point of merchant; a merchant label must name merchant.
func decodeTestEvent(dst []tsstore.Point, b []byte, merchant string, now time.Time) ([]tsstore.Point, error) {
	var e testEvent
	if err := DecodeJSON(b, &e); err != nil {
		return dst, err
	}
	kv := []string{"merchant", merchant}
	for k, v := range e.Labels {
		if k == "merchant" {
			if v != merchant {
				return dst, fmt.Errorf("label merchant=%q: the token is bound to merchant %q", v, merchant)
			}
			continue
		}
		kv = append(kv, k, v)
	}
	ls, err := tsstore.NewLabels(kv...)
	if err != nil {
		return dst, err
	}
	p := tsstore.Point{Metric: e.Metric, Labels: ls, Timestamp: now.UnixMilli(), Value: e.Value}
	if e.Time != nil {
		if err := CheckTime(*e.Time, now); err != nil {
			return dst, fmt.Errorf("field \"time\": %w", err)
		}
		p.Timestamp = *e.Time
	}
	if err := p.Validate(); err != nil {
		return dst, err
	}
	return append(dst, p), nil
}

// TestDecoderMustKeepTheMerchant: a decoder that labels a point with another
// merchant, or none, is refused for the whole request, in both framings.
func TestDecoderMustKeepTheMerchant(t *testing.T) {
	careless := func(dst []tsstore.Point, b []byte, merchant string, now time.Time) ([]tsstore.Point, error) {
		return append(dst, tsstore.Point{Metric: "views", Labels: tsstore.Labels{{Name: "merchant", Value: "other"}}, Timestamp: now.UnixMilli(), Value: 1}), nil
	}
	forgetful := func(dst []tsstore.Point, b []byte, merchant string, now time.Time) ([]tsstore.Point, error) {
		return append(dst, tsstore.Point{Metric: "views", Timestamp: now.UnixMilli(), Value: 1}), nil
	}
	for name, dec := range map[string]EventDecoder{"another merchant": careless, "no merchant": forgetful} {
		if ps, err := parseEventsJSON(nil, []byte(`[{}]`), dec, "m1", fuzzNow); !errors.Is(err, tsstore.ErrInvalid) {
			t.Errorf("%s, JSON: %v, %v; want ErrInvalid", name, ps, err)
		}
		if ps, err := parseEventsNDJSON(nil, []byte("{}\n"), dec, "m1", fuzzNow); !errors.Is(err, tsstore.ErrInvalid) {
			t.Errorf("%s, NDJSON: %v, %v; want ErrInvalid", name, ps, err)
		}
	}
	if ps, err := parseEventsJSON(nil, []byte(`[{"metric":"views"}]`), decodeTestEvent, "m1", fuzzNow); err != nil || len(ps) != 1 {
		t.Errorf("a decoder that keeps the merchant: %v, %v", ps, err)
	}
}
