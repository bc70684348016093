package main

import (
	"bytes"
	"fmt"
	"math"
	"strconv"
	"sync"
	"time"
	"unsafe"

	"github.com/hourglass-io/hourglass/httpapi"
	"github.com/hourglass-io/hourglass/internal/jsonscan"
	"github.com/hourglass-io/hourglass/tsstore"
)

// The event types the server accepts on /v1/events.
const (
	eventOrder    = "order"
	eventRefund   = "refund"
	eventPageView = "page_view"
)

// maxAmount bounds an event's amount.
const maxAmount = 1e12

// maxInterned is the most series an eventDecoder keeps; past it, it starts
// over.
const maxInterned = 1 << 16

// The fields of an event, as clients send it (JSON keys match as
// encoding/json matches them: exactly, else without regard to case).
// Unknown fields are refused.
const (
	fieldType = iota
	fieldCurrency
	fieldStatus
	fieldPath
	fieldCountry
	fieldDevice
	fieldAmount
	fieldTime
	numFields
)

var fieldNames = [numFields]string{"type", "currency", "status", "path", "country", "device", "amount", "time"}

// event is one merchant event, read in place: the string fields are slices
// of the request body or of the decoder's scratch buffers, valid until the
// next event.
type event struct {
	str       [fieldAmount][]byte // by field, up to fieldDevice
	amount    float64
	hasAmount bool
	time      int64 // ms
	hasTime   bool
}

// eventDecoder decodes events without reflection and keeps the series it
// made, so that a repeated series (a merchant's page, currency and status)
// is checked, sorted and allocated once. Not safe for concurrent use.
type eventDecoder struct {
	series  map[string]tsstore.Labels // by merchant and the event's label values, 0xff between them
	key     []byte
	scratch [fieldAmount][]byte // unescaped strings, by field
	kv      []string            // NewLabels' arguments
}

var decoders = sync.Pool{New: func() any { return new(eventDecoder) }}

// decodeEvent is the server's httpapi.EventDecoder: one JSON event, as
// clients send it, into its raw point. It uses a pooled eventDecoder.
func decodeEvent(dst []tsstore.Point, b []byte, merchant string, now time.Time) ([]tsstore.Point, error) {
	d := decoders.Get().(*eventDecoder)
	defer decoders.Put(d)
	return d.decode(dst, b, merchant, now)
}

// decode appends the point of the event b of merchant to dst.
func (d *eventDecoder) decode(dst []tsstore.Point, b []byte, merchant string, now time.Time) ([]tsstore.Point, error) {
	var e event
	if err := d.read(&e, b); err != nil {
		return dst, err
	}
	p, err := d.point(&e, merchant, now)
	if err != nil {
		return dst, err
	}
	return append(dst, p), nil
}

// read reads the JSON object b into e strictly, with encoding/json's
// semantics: a key matches a field exactly or else case-insensitively, a
// later key wins, null leaves a string field as it was and unsets amount
// and time, unknown fields are refused.
func (d *eventDecoder) read(e *event, b []byte) error {
	o, kind := jsonscan.NewObject(b)
	if kind != "object" {
		if kind == "" {
			_, err := jsonscan.Value(b, jsonscan.SkipSpace(b, 0))
			return err
		}
		return fmt.Errorf("want a JSON object of an event, got %s", kind)
	}
	for {
		rawKey, v, ok, err := o.Next()
		if err != nil {
			return err
		}
		if !ok {
			return nil
		}
		key := jsonscan.Unquote(d.key[:0], rawKey)
		f := lookupField(key)
		if f < 0 {
			return fmt.Errorf("unknown field %q", key)
		}
		switch c := v[0]; {
		case c == 'n': // null
			switch f {
			case fieldAmount:
				e.hasAmount = false
			case fieldTime:
				e.hasTime = false
			}
		case f == fieldAmount:
			if c != '-' && (c < '0' || c > '9') {
				return fmt.Errorf("field \"amount\": want float64, got %s", kindOf(c))
			}
			a, err := strconv.ParseFloat(unsafeString(v), 64)
			if err != nil {
				return fmt.Errorf("field \"amount\": want float64, got number %s", v)
			}
			e.amount, e.hasAmount = a, true
		case f == fieldTime:
			ms, err := d.readTime(v)
			if err != nil {
				return fmt.Errorf("field \"time\": %w", err)
			}
			e.time, e.hasTime = ms, true
		case c != '"':
			return fmt.Errorf("field %q: want string, got %s", fieldNames[f], kindOf(c))
		default:
			s := jsonscan.Unquote(d.scratch[f][:0], v)
			if bytes.IndexByte(v, '\\') >= 0 {
				d.scratch[f] = s // decoded there, and maybe grown
			}
			e.str[f] = s
		}
	}
}

// lookupField returns the field of key, or -1.
func lookupField(key []byte) int {
	switch string(key) {
	case "type":
		return fieldType
	case "currency":
		return fieldCurrency
	case "status":
		return fieldStatus
	case "path":
		return fieldPath
	case "country":
		return fieldCountry
	case "device":
		return fieldDevice
	case "amount":
		return fieldAmount
	case "time":
		return fieldTime
	}
	for f, name := range fieldNames {
		if bytes.EqualFold(key, []byte(name)) {
			return f
		}
	}
	return -1
}

// kindOf names the kind of the JSON value that starts with c.
func kindOf(c byte) string {
	switch c {
	case '"':
		return "string"
	case '{':
		return "object"
	case '[':
		return "array"
	case 't', 'f':
		return "bool"
	}
	return "number"
}

// readTime reads an event's time: an RFC 3339 string or milliseconds since
// the Unix epoch.
func (d *eventDecoder) readTime(v []byte) (int64, error) {
	if v[0] == '"' {
		s := jsonscan.Unquote(d.key[:0], v)
		tm, err := time.Parse(time.RFC3339Nano, unsafeString(s))
		if err != nil {
			return 0, fmt.Errorf("time %q is not RFC 3339", s)
		}
		return tm.UnixMilli(), nil
	}
	ms, err := strconv.ParseInt(unsafeString(v), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("time %s is neither RFC 3339 nor integer milliseconds", v)
	}
	return ms, nil
}

// point checks e and returns its raw point: metric = the event type, labels =
// merchant and the event's attributes, value = the amount (or 1).
func (d *eventDecoder) point(e *event, merchant string, now time.Time) (tsstore.Point, error) {
	typ := e.str[fieldType]
	metric, value := "", 1.0
	switch string(typ) {
	case eventOrder, eventRefund:
		if string(typ) == eventOrder {
			metric = eventOrder
		} else {
			metric = eventRefund
		}
		if !e.hasAmount {
			return tsstore.Point{}, fmt.Errorf("field \"amount\": required for %s events", metric)
		}
		a := e.amount
		if math.IsNaN(a) || a < 0 || a > maxAmount {
			return tsstore.Point{}, fmt.Errorf("field \"amount\": %v is not in [0, %g]", a, float64(maxAmount))
		}
		value = a
		if !upperLetters(e.str[fieldCurrency], 3) {
			return tsstore.Point{}, fmt.Errorf("field \"currency\": %q is not an ISO 4217 code such as \"EUR\"", e.str[fieldCurrency])
		}
		status := e.str[fieldStatus]
		if metric == eventOrder {
			if len(status) == 0 {
				e.str[fieldStatus] = statusPaid
			} else if !orderStatus(status) {
				return tsstore.Point{}, fmt.Errorf("field \"status\": %q is not one of paid, pending, failed, cancelled", status)
			}
		} else if len(status) != 0 {
			return tsstore.Point{}, fmt.Errorf("field \"status\": not used by refund events")
		}
		if len(e.str[fieldPath]) != 0 {
			return tsstore.Point{}, fmt.Errorf("field \"path\": not used by %s events", metric)
		}
	case eventPageView:
		metric = eventPageView
		if !urlPath(e.str[fieldPath]) {
			return tsstore.Point{}, fmt.Errorf("field \"path\": %q is not a URL path such as \"/products/42\" (no query string, at most 256 bytes)", e.str[fieldPath])
		}
		if e.hasAmount || len(e.str[fieldCurrency]) != 0 || len(e.str[fieldStatus]) != 0 {
			return tsstore.Point{}, fmt.Errorf("fields \"amount\", \"currency\", \"status\": not used by page_view events")
		}
	case "":
		return tsstore.Point{}, fmt.Errorf("field \"type\": required (order, refund or page_view)")
	default:
		return tsstore.Point{}, fmt.Errorf("field \"type\": unknown event type %q (known: order, refund, page_view)", typ)
	}
	if c := e.str[fieldCountry]; len(c) != 0 && !upperLetters(c, 2) {
		return tsstore.Point{}, fmt.Errorf("field \"country\": %q is not an ISO 3166 code such as \"DE\"", c)
	}
	if dev := e.str[fieldDevice]; len(dev) != 0 && !device(dev) {
		return tsstore.Point{}, fmt.Errorf("field \"device\": %q is not one of desktop, mobile, tablet", dev)
	}
	ls, err := d.labels(e, metric, merchant)
	if err != nil {
		return tsstore.Point{}, err
	}
	ts := now.UnixMilli()
	if e.hasTime {
		ts = e.time
		if err := httpapi.CheckTime(ts, now); err != nil {
			return tsstore.Point{}, fmt.Errorf("field \"time\": %w", err)
		}
	}
	return tsstore.Point{Metric: metric, Labels: ls, Timestamp: ts, Value: value}, nil
}

// labelOf names the label of each string field but the type.
var labelOf = [fieldAmount]string{fieldCurrency: "currency", fieldStatus: "status", fieldPath: "path", fieldCountry: "country", fieldDevice: "device"}

// labels returns the series of a checked event e of metric: merchant and
// e's attributes, made and validated the first time it is seen. Checked
// attributes hold no 0xff byte, so the key names one series: merchant is
// what precedes its last six 0xff.
func (d *eventDecoder) labels(e *event, metric, merchant string) (tsstore.Labels, error) {
	if d.series == nil || len(d.series) >= maxInterned {
		d.series = make(map[string]tsstore.Labels)
	}
	d.key = append(append(d.key[:0], merchant...), 0xff)
	d.key = append(d.key, metric...)
	for f := fieldCurrency; f < fieldAmount; f++ {
		d.key = append(append(d.key, 0xff), e.str[f]...)
	}
	if ls, ok := d.series[string(d.key)]; ok {
		return ls, nil
	}
	d.kv = append(d.kv[:0], "merchant", merchant)
	for f := fieldCurrency; f < fieldAmount; f++ {
		if len(e.str[f]) != 0 {
			d.kv = append(d.kv, labelOf[f], string(e.str[f]))
		}
	}
	ls, err := tsstore.NewLabels(d.kv...)
	if err != nil {
		return nil, err
	}
	// Exactly as long as it is: an append by a user copies it.
	ls = ls[:len(ls):len(ls)]
	d.series[string(d.key)] = ls
	return ls, nil
}

// upperLetters reports whether s is n letters A to Z.
func upperLetters(s []byte, n int) bool {
	if len(s) != n {
		return false
	}
	for _, c := range s {
		if c < 'A' || c > 'Z' {
			return false
		}
	}
	return true
}

// statusPaid is the status of an order that has none.
var statusPaid = []byte("paid")

// orderStatus reports whether s is the status of an order.
func orderStatus(s []byte) bool {
	switch string(s) {
	case "paid", "pending", "failed", "cancelled":
		return true
	}
	return false
}

// device reports whether s is a device of an event.
func device(s []byte) bool {
	switch string(s) {
	case "desktop", "mobile", "tablet":
		return true
	}
	return false
}

// pathByte is the set of bytes of a URL path after its leading '/'.
var pathByte = func() (t [256]bool) {
	for _, c := range []byte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/._~%!$&'()*+,;=:@-") {
		t[c] = true
	}
	return t
}()

// urlPath reports whether s is a URL path without query: '/' then at most
// 255 of pathByte.
func urlPath(s []byte) bool {
	if len(s) == 0 || s[0] != '/' || len(s) > 256 {
		return false
	}
	for _, c := range s[1:] {
		if !pathByte[c] {
			return false
		}
	}
	return true
}

// unsafeString is b as a string, for a parse that does not keep it.
func unsafeString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }
