package main

import (
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"time"

	"github.com/hourglass-io/hourglass/httpapi"
	"github.com/hourglass-io/hourglass/tsstore"
)

// The example server's event decoder as it was before the fast path
// (encoding/json into a struct, regular expressions, labels made per event):
// the baseline of BenchmarkDecodeEvents and the oracle of
// TestDecoderAgreesWithEncodingJSON.

// reflectEvent is one merchant event as clients send it. Unknown fields are refused.
type reflectEvent struct {
	Type     string            `json:"type"`
	Time     *reflectEventTime `json:"time,omitempty"`
	Amount   *float64          `json:"amount,omitempty"`
	Currency string            `json:"currency,omitempty"`
	Status   string            `json:"status,omitempty"`
	Path     string            `json:"path,omitempty"`
	Country  string            `json:"country,omitempty"`
	Device   string            `json:"device,omitempty"`
}

// reflectEventTime is an event's time: an RFC 3339 string or milliseconds since the
// Unix epoch.
type reflectEventTime int64

func (t *reflectEventTime) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		tm, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return fmt.Errorf("time %q is not RFC 3339", s)
		}
		*t = reflectEventTime(tm.UnixMilli())
		return nil
	}
	ms, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return fmt.Errorf("time %s is neither RFC 3339 nor integer milliseconds", b)
	}
	*t = reflectEventTime(ms)
	return nil
}

var (
	reflectCurrency = regexp.MustCompile(`^[A-Z]{3}$`)
	reflectCountry  = regexp.MustCompile(`^[A-Z]{2}$`)
	reflectPath     = regexp.MustCompile(`^/[A-Za-z0-9/._~%!$&'()*+,;=:@-]{0,255}$`)
	reflectStatuses = map[string]bool{"paid": true, "pending": true, "failed": true, "cancelled": true}
	reflectDevices  = map[string]bool{"desktop": true, "mobile": true, "tablet": true}
)

// decodeEventReflect was the server's httpapi.EventDecoder: one JSON event, as
// clients send it, into its raw point.
func decodeEventReflect(dst []tsstore.Point, b []byte, merchant string, now time.Time) ([]tsstore.Point, error) {
	var e reflectEvent
	if err := httpapi.DecodeJSON(b, &e); err != nil {
		return dst, err
	}
	p, err := e.point(merchant, now)
	if err != nil {
		return dst, err
	}
	return append(dst, p), nil
}

// point checks e and returns its raw point: metric = the event type, labels =
// merchant and the event's attributes, value = the amount (or 1).
func (e *reflectEvent) point(merchant string, now time.Time) (tsstore.Point, error) {
	kv := []string{"merchant", merchant}
	value := 1.0
	switch e.Type {
	case eventOrder, eventRefund:
		if e.Amount == nil {
			return tsstore.Point{}, fmt.Errorf("field \"amount\": required for %s events", e.Type)
		}
		a := *e.Amount
		if math.IsNaN(a) || a < 0 || a > maxAmount {
			return tsstore.Point{}, fmt.Errorf("field \"amount\": %v is not in [0, %g]", a, float64(maxAmount))
		}
		value = a
		if !reflectCurrency.MatchString(e.Currency) {
			return tsstore.Point{}, fmt.Errorf("field \"currency\": %q is not an ISO 4217 code such as \"EUR\"", e.Currency)
		}
		kv = append(kv, "currency", e.Currency)
		if e.Type == eventOrder {
			status := e.Status
			if status == "" {
				status = "paid"
			}
			if !reflectStatuses[status] {
				return tsstore.Point{}, fmt.Errorf("field \"status\": %q is not one of paid, pending, failed, cancelled", e.Status)
			}
			kv = append(kv, "status", status)
		} else if e.Status != "" {
			return tsstore.Point{}, fmt.Errorf("field \"status\": not used by refund events")
		}
		if e.Path != "" {
			return tsstore.Point{}, fmt.Errorf("field \"path\": not used by %s events", e.Type)
		}
	case eventPageView:
		if !reflectPath.MatchString(e.Path) {
			return tsstore.Point{}, fmt.Errorf("field \"path\": %q is not a URL path such as \"/products/42\" (no query string, at most 256 bytes)", e.Path)
		}
		kv = append(kv, "path", e.Path)
		if e.Amount != nil || e.Currency != "" || e.Status != "" {
			return tsstore.Point{}, fmt.Errorf("fields \"amount\", \"currency\", \"status\": not used by page_view events")
		}
	case "":
		return tsstore.Point{}, fmt.Errorf("field \"type\": required (order, refund or page_view)")
	default:
		return tsstore.Point{}, fmt.Errorf("field \"type\": unknown event type %q (known: order, refund, page_view)", e.Type)
	}
	if e.Country != "" {
		if !reflectCountry.MatchString(e.Country) {
			return tsstore.Point{}, fmt.Errorf("field \"country\": %q is not an ISO 3166 code such as \"DE\"", e.Country)
		}
		kv = append(kv, "country", e.Country)
	}
	if e.Device != "" {
		if !reflectDevices[e.Device] {
			return tsstore.Point{}, fmt.Errorf("field \"device\": %q is not one of desktop, mobile, tablet", e.Device)
		}
		kv = append(kv, "device", e.Device)
	}
	ls, err := tsstore.NewLabels(kv...)
	if err != nil {
		return tsstore.Point{}, err
	}
	ts := now.UnixMilli()
	if e.Time != nil {
		ts = int64(*e.Time)
		if err := httpapi.CheckTime(ts, now); err != nil {
			return tsstore.Point{}, fmt.Errorf("field \"time\": %w", err)
		}
	}
	return tsstore.Point{Metric: e.Type, Labels: ls, Timestamp: ts, Value: value}, nil
}
