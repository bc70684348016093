package httpapi

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	protocol "github.com/influxdata/line-protocol"

	"github.com/hourglass-io/hourglass/tsstore"
)

// parseLineProtocol parses InfluxDB line protocol (1.x and 2.x are the same
// format) for merchant into raw points, with precision the unit of the
// timestamps ("ns" when empty). Each numeric or boolean field of a line
// becomes one point: metric = the measurement when the field is "value",
// else measurement_field, with characters outside [a-zA-Z0-9_:] replaced by
// '_'; labels = the tags (names sanitized likewise) plus merchant; booleans
// count as 1 and 0; string fields are skipped. A line without a timestamp
// gets now. A merchant tag other than merchant is refused.
//
// Parsing uses the ragel state machine of github.com/influxdata/line-protocol,
// the parser of Telegraf and InfluxDB. Errors are of kind tsstore.ErrInvalid
// and name the line (from 1).
func parseLineProtocol(body []byte, precision, merchant string, now time.Time) ([]tsstore.Point, error) {
	unit, err := precisionUnit(precision)
	if err != nil {
		return nil, err
	}
	h := &lineHandler{}
	m := protocol.NewMachine(h)
	h.machine = m
	m.SetData(body)
	var points []tsstore.Point
	for {
		h.reset()
		err := m.Next()
		if errors.Is(err, protocol.EOF) {
			break
		}
		// The machine's line number is past the line's newline once the
		// line is parsed: the line is where its measurement began.
		line := h.line
		if line == 0 {
			line = m.LineNumber()
		}
		if err != nil {
			return nil, tsstore.Errorf(tsstore.ErrInvalid, "line %d, column %d: %v in %q", line, m.Column(), err, lineText(body, m.LineOffset()))
		}
		points, err = h.appendPoints(points, unit, merchant, now)
		if err != nil {
			return nil, tsstore.Errorf(tsstore.ErrInvalid, "line %d: %w", line, err)
		}
	}
	if len(points) == 0 {
		return nil, tsstore.Errorf(tsstore.ErrInvalid, "no numeric fields in the request body")
	}
	return points, nil
}

// lineText returns the line of body starting at offset, without its
// newline, cut to 100 bytes.
func lineText(body []byte, offset int) []byte {
	b := body[min(offset, len(body)):]
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		b = b[:i]
	}
	b = bytes.TrimSuffix(b, []byte("\r"))
	if len(b) > 100 {
		b = b[:100]
	}
	return b
}

// precisionUnit returns the nanoseconds per timestamp unit of an InfluxDB
// precision parameter (1.x: ns, u, ms, s, m, h; 2.x: ns, us, ms, s).
func precisionUnit(p string) (int64, error) {
	switch p {
	case "", "ns", "n":
		return 1, nil
	case "u", "us", "µ":
		return int64(time.Microsecond), nil
	case "ms":
		return int64(time.Millisecond), nil
	case "s":
		return int64(time.Second), nil
	case "m":
		return int64(time.Minute), nil
	case "h":
		return int64(time.Hour), nil
	}
	return 0, tsstore.Errorf(tsstore.ErrInvalid, "precision %q: want ns, us, ms, s, m or h", p)
}

// lineHandler receives one line from the parser's machine at a time.
type lineHandler struct {
	machine     interface{ LineNumber() int }
	line        int // of the measurement: the line's number (from 1); 0 before it
	measurement string
	tags        []tsstore.Label
	fields      []lineField
	ts          int64
	hasTS       bool
}

type lineField struct {
	key   string
	value float64
}

var _ protocol.Handler = (*lineHandler)(nil)

func (h *lineHandler) reset() {
	h.line, h.measurement, h.tags, h.fields, h.hasTS = 0, "", h.tags[:0], h.fields[:0], false
}

func (h *lineHandler) SetMeasurement(name []byte) error {
	h.line = h.machine.LineNumber()
	h.measurement = string(unescapeLP(name))
	return nil
}

func (h *lineHandler) AddTag(key, value []byte) error {
	h.tags = append(h.tags, tsstore.Label{Name: string(unescapeLP(key)), Value: string(unescapeLP(value))})
	return nil
}

func (h *lineHandler) AddInt(key, value []byte) error {
	v, err := strconv.ParseInt(string(bytes.TrimSuffix(value, []byte("i"))), 10, 64)
	if err != nil {
		return fmt.Errorf("field %q: integer %s out of range", unescapeLP(key), value)
	}
	return h.addField(key, float64(v))
}

func (h *lineHandler) AddUint(key, value []byte) error {
	v, err := strconv.ParseUint(string(bytes.TrimSuffix(value, []byte("u"))), 10, 64)
	if err != nil {
		return fmt.Errorf("field %q: unsigned integer %s out of range", unescapeLP(key), value)
	}
	return h.addField(key, float64(v))
}

func (h *lineHandler) AddFloat(key, value []byte) error {
	v, err := strconv.ParseFloat(string(value), 64)
	if err != nil || math.IsInf(v, 0) || math.IsNaN(v) {
		return fmt.Errorf("field %q: %s is not a finite float", unescapeLP(key), value)
	}
	return h.addField(key, v)
}

func (h *lineHandler) AddString(key, value []byte) error { return nil }

func (h *lineHandler) AddBool(key, value []byte) error {
	switch value[0] {
	case 't', 'T':
		return h.addField(key, 1)
	}
	return h.addField(key, 0)
}

func (h *lineHandler) SetTimestamp(tm []byte) error {
	v, err := strconv.ParseInt(string(tm), 10, 64)
	if err != nil {
		return fmt.Errorf("timestamp %s out of range", tm)
	}
	h.ts, h.hasTS = v, true
	return nil
}

func (h *lineHandler) addField(key []byte, v float64) error {
	h.fields = append(h.fields, lineField{string(unescapeLP(key)), v})
	return nil
}

// appendPoints appends the points of the line in h.
func (h *lineHandler) appendPoints(dst []tsstore.Point, unit int64, merchant string, now time.Time) ([]tsstore.Point, error) {
	ts := now.UnixMilli()
	if h.hasTS {
		ns, ok := mulNoOverflow(h.ts, unit)
		if !ok {
			return dst, fmt.Errorf("timestamp %d out of range", h.ts)
		}
		ts = ns / int64(time.Millisecond)
	}
	if err := CheckTime(ts, now); err != nil {
		return dst, err
	}
	kv := make([]string, 0, 2*len(h.tags)+2)
	for _, t := range h.tags {
		name := sanitizeName(t.Name, false)
		if name == "merchant" {
			if t.Value != merchant {
				return dst, fmt.Errorf("tag merchant=%q: the token is bound to merchant %q", t.Value, merchant)
			}
			continue
		}
		kv = append(kv, name, t.Value)
	}
	kv = append(kv, "merchant", merchant)
	ls, err := tsstore.NewLabels(kv...)
	if err != nil {
		return dst, err
	}
	for _, f := range h.fields {
		metric := h.measurement
		if f.key != "value" {
			metric += "_" + f.key
		}
		p := tsstore.Point{Metric: sanitizeName(metric, true), Labels: ls, Timestamp: ts, Value: f.value}
		if err := p.Validate(); err != nil {
			return dst, fmt.Errorf("field %q: %w", f.key, err)
		}
		dst = append(dst, p)
	}
	return dst, nil
}

func mulNoOverflow(a, b int64) (int64, bool) {
	if a == 0 || b == 1 {
		return a * b, true
	}
	c := a * b
	return c, c/b == a
}

// sanitizeName replaces the characters a metric name (colon true) or label
// name may not hold with '_', and prefixes a leading digit with '_'.
func sanitizeName(s string, colon bool) string {
	b := []byte(s)
	for i, c := range b {
		ok := c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || colon && c == ':'
		if !ok {
			b[i] = '_'
		}
	}
	if len(b) > 0 && b[0] >= '0' && b[0] <= '9' {
		b = append([]byte{'_'}, b...)
	}
	return string(b)
}

// unescapeLP removes line protocol's backslash escapes of ',', ' ', '=' and
// '"', as the parser library's own unescaper does.
func unescapeLP(b []byte) []byte {
	if bytes.IndexByte(b, '\\') < 0 {
		return b
	}
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		if b[i] == '\\' && i+1 < len(b) {
			switch b[i+1] {
			case ',', ' ', '=', '"':
				i++
			}
		}
		out = append(out, b[i])
	}
	return out
}
