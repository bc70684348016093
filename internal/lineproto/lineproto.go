package lineproto

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"
	"unsafe"

	"github.com/influxdata/line-protocol/v2/lineprotocol"

	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/writeback"
)

// Defaults of a Decoder's window around now, in which a point's timestamp
// must lie: the engine's defaults, so that the error names the line rather
// than the engine's point index.
const (
	DefaultMaxLate   = writeback.DefaultMaxLate
	DefaultMaxFuture = writeback.DefaultMaxFuture
	// MaxInterned is the most series (and metric names) a Decoder keeps;
	// past it, it starts over.
	MaxInterned = 1 << 16
)

// Decoder decodes line protocol, keeping the series and metric names it
// made for the next lines and requests. The zero value is ready to use.
// Not safe for concurrent use.
type Decoder struct {
	series  map[string]tsstore.Labels // by merchant, 0xfd, then each tag's raw key 0xfe value 0xff
	metrics map[string]string         // by measurement 0xff field key
	// recent are the metrics of the previous line's first fields, by
	// position: lines of one measurement repeat them in order.
	recent [4]struct {
		key    []byte
		metric string
	}

	key    []byte      // the current line's series key
	names  []byte      // the current line's field keys
	fields []field     // the current line's numeric fields
	kv     []string    // NewLabels' arguments
	tags   [][2][]byte // the current line's tags (valid until the next line)
}

type field struct {
	end   int // the end of its key in names
	value float64
}

var pool = sync.Pool{New: func() any { return new(Decoder) }}

// Decode is Decoder.Decode with a pooled Decoder.
func Decode(body []byte, precision, merchant string, now time.Time) ([]tsstore.Point, error) {
	return Append(nil, body, precision, merchant, now)
}

// Append is Decoder.Append with a pooled Decoder.
func Append(dst []tsstore.Point, body []byte, precision, merchant string, now time.Time) ([]tsstore.Point, error) {
	d := pool.Get().(*Decoder)
	defer pool.Put(d)
	return d.Append(dst, body, precision, merchant, now)
}

// Decode decodes body for merchant into raw points, with precision the
// unit of the timestamps ("ns" when empty). Each numeric or boolean field
// of a line becomes one point: metric = the measurement when the field is
// "value", else measurement_field, with characters outside [a-zA-Z0-9_:]
// replaced by '_'; labels = the tags (names sanitized likewise) plus
// merchant; booleans count as 1 and 0; string fields are skipped. A line
// without a timestamp gets now. A merchant tag other than merchant is
// refused, and so is a timestamp outside [now-DefaultMaxLate,
// now+DefaultMaxFuture]. The points' labels are shared with the Decoder
// and with each other: do not modify them. Nothing of the points refers to
// body's memory: body may be reused once Decode returns.
func (d *Decoder) Decode(body []byte, precision, merchant string, now time.Time) ([]tsstore.Point, error) {
	return d.Append(nil, body, precision, merchant, now)
}

// Append is Decode appending the points to dst, so that a caller can reuse
// a slice from request to request. On error it returns nil, and dst's
// spare capacity may hold points of body: a caller that pools dst's memory
// should drop it.
func (d *Decoder) Append(dst []tsstore.Point, body []byte, precision, merchant string, now time.Time) ([]tsstore.Point, error) {
	unit, err := PrecisionUnit(precision)
	if err != nil {
		return nil, err
	}
	if d.series == nil || len(d.series) >= MaxInterned {
		d.series = make(map[string]tsstore.Labels)
	}
	if d.metrics == nil || len(d.metrics) >= MaxInterned {
		d.metrics = make(map[string]string)
	}
	nowMs := now.UnixMilli()
	oldest, newest := now.Add(-DefaultMaxLate).UnixNano(), now.Add(DefaultMaxFuture).UnixNano()
	points, start := dst, len(dst)
	dec := lineprotocol.NewDecoderWithBytes(body)
	for dec.Next() {
		// anchor is a slice of the line in body, to name the line of an
		// error found after the decoder has moved past it.
		var anchor []byte
		m, err := dec.Measurement()
		if err != nil {
			return nil, syntaxError(err)
		}
		if anchor == nil && within(body, m) {
			anchor = m
		}
		d.key = append(append(d.key[:0], merchant...), 0xfd)
		d.tags = d.tags[:0]
		for {
			k, v, err := dec.NextTag()
			if err != nil {
				return nil, syntaxError(err)
			}
			if k == nil {
				break
			}
			if anchor == nil && within(body, k) {
				anchor = k
			}
			d.key = append(append(append(append(d.key, k...), 0xfe), v...), 0xff)
			d.tags = append(d.tags, [2][]byte{k, v})
		}
		d.names, d.fields = d.names[:0], d.fields[:0]
		for {
			k, kind, raw, err := dec.NextFieldBytes()
			if err != nil {
				return nil, syntaxError(err)
			}
			if k == nil {
				break
			}
			if anchor == nil && within(body, raw) {
				anchor = raw
			}
			v, err := lineprotocol.NewValueFromBytes(kind, raw)
			if err != nil {
				return nil, lineError(body, anchor, fmt.Errorf("field %q: %w", k, err))
			}
			var f float64
			switch kind {
			case lineprotocol.Int:
				f = float64(v.IntV())
			case lineprotocol.Uint:
				f = float64(v.UintV())
			case lineprotocol.Float:
				f = v.FloatV()
			case lineprotocol.Bool:
				if v.BoolV() {
					f = 1
				}
			default:
				continue
			}
			d.names = append(d.names, k...)
			d.fields = append(d.fields, field{end: len(d.names), value: f})
		}
		tb, err := dec.TimeBytes()
		if err != nil {
			return nil, syntaxError(err)
		}
		if anchor == nil && within(body, tb) {
			anchor = tb
		}
		ts := nowMs
		if tb != nil {
			t, err := strconv.ParseInt(unsafeString(tb), 10, 64)
			if err != nil {
				return nil, lineError(body, anchor, fmt.Errorf("timestamp %s out of range", tb))
			}
			ns, ok := mulNoOverflow(t, unit)
			if !ok {
				return nil, lineError(body, anchor, fmt.Errorf("timestamp %d out of range", t))
			}
			ts = ns / int64(time.Millisecond)
		}
		if ns := ts * int64(time.Millisecond); ns < oldest || ns > newest {
			return nil, lineError(body, anchor, fmt.Errorf("timestamp %s is outside [now-%v, now+%v]",
				tsstore.TimeOf(ts).Format(time.RFC3339Nano), DefaultMaxLate, DefaultMaxFuture))
		}
		ls, err := d.labels(merchant)
		if err != nil {
			return nil, lineError(body, anchor, err)
		}
		from := 0
		for pos, f := range d.fields {
			name := d.names[from:f.end]
			from = f.end
			metric, err := d.metric(pos, m, name)
			if err != nil {
				return nil, lineError(body, anchor, fmt.Errorf("field %q: %w", name, err))
			}
			if len(points) == start {
				// Room for lines like the first one.
				points = slices.Grow(points, (1+bytes.Count(body, []byte{'\n'}))*len(d.fields))
			}
			points = append(points, tsstore.Point{Metric: metric, Labels: ls, Timestamp: ts, Value: f.value})
		}
	}
	if len(points) == start {
		return nil, tsstore.Errorf(tsstore.ErrInvalid, "no numeric fields in the request body")
	}
	return points, nil
}

// labels returns the series of the current line (d.key, d.tags) for
// merchant, made and validated the first time it is seen.
func (d *Decoder) labels(merchant string) (tsstore.Labels, error) {
	if ls, ok := d.series[string(d.key)]; ok {
		return ls, nil
	}
	d.kv = d.kv[:0]
	for _, t := range d.tags {
		name := sanitizeName(t[0], false)
		if name == "merchant" {
			if string(t[1]) != merchant {
				return nil, fmt.Errorf("tag merchant=%q: the token is bound to merchant %q", t[1], merchant)
			}
			continue
		}
		d.kv = append(d.kv, name, string(t[1]))
	}
	d.kv = append(d.kv, "merchant", merchant)
	ls, err := tsstore.NewLabels(d.kv...)
	if err != nil {
		return nil, err
	}
	// Exactly as long as it is: an append by a user copies it.
	ls = ls[:len(ls):len(ls)]
	d.series[string(d.key)] = ls
	return ls, nil
}

// metric returns the metric of the field at position pos of a line of
// measurement.
func (d *Decoder) metric(pos int, measurement, field []byte) (string, error) {
	d.key = append(append(append(d.key[:0], measurement...), 0xff), field...)
	var r *struct {
		key    []byte
		metric string
	}
	if pos < len(d.recent) {
		if r = &d.recent[pos]; bytes.Equal(r.key, d.key) && r.key != nil {
			return r.metric, nil
		}
	}
	m, ok := d.metrics[string(d.key)]
	if !ok {
		var err error
		if m, err = d.newMetric(measurement, field); err != nil {
			return "", err
		}
	}
	if r != nil {
		r.key, r.metric = append(r.key[:0], d.key...), m
	}
	return m, nil
}

// newMetric makes, checks and keeps the metric of a field of a
// measurement (d.key).
func (d *Decoder) newMetric(measurement, field []byte) (string, error) {
	name := append([]byte(nil), measurement...)
	if string(field) != "value" {
		name = append(append(name, '_'), field...)
	}
	m := sanitizeName(name, true)
	if err := tsstore.ValidateMetric(m); err != nil {
		return "", err
	}
	d.metrics[string(d.key)] = m
	return m, nil
}

// PrecisionUnit returns the nanoseconds per timestamp unit of an InfluxDB
// precision parameter (1.x: ns, u, ms, s, m, h; 2.x: ns, us, ms, s).
func PrecisionUnit(p string) (int64, error) {
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

func syntaxError(err error) error {
	var de *lineprotocol.DecodeError
	if errors.As(err, &de) {
		return tsstore.Errorf(tsstore.ErrInvalid, "line %d, column %d: %v", de.Line, de.Column, de.Err)
	}
	return tsstore.Errorf(tsstore.ErrInvalid, "%v", err)
}

// lineError names the line of anchor, a slice of body.
func lineError(body, anchor []byte, err error) error {
	if anchor == nil {
		return tsstore.Errorf(tsstore.ErrInvalid, "%w", err)
	}
	off := int(uintptr(unsafe.Pointer(unsafe.SliceData(anchor))) - uintptr(unsafe.Pointer(unsafe.SliceData(body))))
	return tsstore.Errorf(tsstore.ErrInvalid, "line %d: %w", 1+bytes.Count(body[:off], []byte{'\n'}), err)
}

// within reports whether b is a non-empty slice of body's memory.
func within(body, b []byte) bool {
	if len(b) == 0 || len(body) == 0 {
		return false
	}
	p, lo := uintptr(unsafe.Pointer(unsafe.SliceData(b))), uintptr(unsafe.Pointer(unsafe.SliceData(body)))
	return p >= lo && p < lo+uintptr(len(body))
}

func unsafeString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

func mulNoOverflow(a, b int64) (int64, bool) {
	if a == 0 || b == 1 {
		return a * b, true
	}
	c := a * b
	return c, c/b == a
}

// sanitizeName returns b with the characters a metric name (colon true)
// or label name may not hold replaced by '_', and a leading digit
// prefixed with '_'.
func sanitizeName(b []byte, colon bool) string {
	out := make([]byte, 0, len(b)+1)
	if len(b) > 0 && b[0] >= '0' && b[0] <= '9' {
		out = append(out, '_')
	}
	for _, c := range b {
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || colon && c == ':') {
			c = '_'
		}
		out = append(out, c)
	}
	return string(out)
}
