package tsstore

import (
	"math"
	"strings"
	"time"
	"unicode/utf8"
)

// Limits on what a point may hold. Larger input is rejected with ErrInvalid.
const (
	// MaxLabels is the most labels a series may have.
	MaxLabels = 32
	// MaxNameLen is the longest metric or label name, in bytes.
	MaxNameLen = 200
	// MaxValueLen is the longest label value, in bytes.
	MaxValueLen = 2048
	// MaxTimestamp is the first timestamp not accepted (year 3000, in ms).
	MaxTimestamp int64 = 32503680000000
	// DefaultCellWidth is the default width of a cell: the finest step a
	// merchant dashboard asks for.
	DefaultCellWidth = time.Minute
	// ReservedLabel is the label name stores use for the metric name; it is
	// not accepted as a label of a point.
	ReservedLabel = "__name__"
	// WriterLabel is the label (or tag) name under which stores keep a
	// cell's writer when it is not "" (see [Cell.Writer]). It starts with
	// "__", so no label of a point can take it; stores strip it from query
	// results, and a matcher on it sees the value "" as on any missing
	// label.
	WriterLabel = "__writer__"
	// MaxWriterLen is the longest writer name of a cell, in bytes.
	MaxWriterLen = 128
)

// ValidateWriter checks the writer name of a cell: "" (the legacy writer)
// or 1 to MaxWriterLen bytes of [a-zA-Z0-9_.:/-]. Stores map it to a
// label or tag value, so it needs no escaping anywhere.
func ValidateWriter(w string) error {
	if len(w) > MaxWriterLen {
		return Errorf(ErrInvalid, "writer %.40q... is %d bytes, longer than %d", w, len(w), MaxWriterLen)
	}
	for i := 0; i < len(w); i++ {
		c := w[i]
		if !(isLetter(c) || isDigit(c) || c == '_' || c == '.' || c == ':' || c == '/' || c == '-') {
			return Errorf(ErrInvalid, "writer %q: character %q at %d is not allowed (want [a-zA-Z0-9_.:/-])", w, c, i)
		}
	}
	return nil
}

// ValidateMetric checks a metric name: 1 to MaxNameLen bytes of
// [a-zA-Z_:][a-zA-Z0-9_:]* (Prometheus' metric name syntax).
func ValidateMetric(name string) error {
	if name == "" {
		return Errorf(ErrInvalid, "metric name is empty")
	}
	if len(name) > MaxNameLen {
		return Errorf(ErrInvalid, "metric name %.40q... is %d bytes, longer than %d", name, len(name), MaxNameLen)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c == '_' || c == ':' || isLetter(c) || (i > 0 && isDigit(c))) {
			return Errorf(ErrInvalid, "metric name %q: character %q at %d is not allowed (want [a-zA-Z_:][a-zA-Z0-9_:]*)", name, c, i)
		}
	}
	return nil
}

func validateLabelName(name string) error {
	if name == "" {
		return Errorf(ErrInvalid, "label name is empty")
	}
	if len(name) > MaxNameLen {
		return Errorf(ErrInvalid, "label name %.40q... is %d bytes, longer than %d", name, len(name), MaxNameLen)
	}
	if strings.HasPrefix(name, "__") {
		return Errorf(ErrInvalid, "label name %q: names starting with __ are reserved", name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c == '_' || isLetter(c) || (i > 0 && isDigit(c))) {
			return Errorf(ErrInvalid, "label name %q: character %q at %d is not allowed (want [a-zA-Z_][a-zA-Z0-9_]*)", name, c, i)
		}
	}
	return nil
}

func validateLabelValue(name, v string) error {
	if v == "" {
		return Errorf(ErrInvalid, "label %q has an empty value (leave the label out instead)", name)
	}
	if len(v) > MaxValueLen {
		return Errorf(ErrInvalid, "label %q: value is %d bytes, longer than %d", name, len(v), MaxValueLen)
	}
	if !utf8.ValidString(v) {
		return Errorf(ErrInvalid, "label %q: value %q is not valid UTF-8", name, v)
	}
	return nil
}

func isLetter(c byte) bool { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') }
func isDigit(c byte) bool  { return c >= '0' && c <= '9' }

func validateTimestamp(what string, t int64) error {
	if t < 0 || t >= MaxTimestamp {
		return Errorf(ErrInvalid, "%s %d is outside [0, %d) (milliseconds since 1970 up to year 3000)", what, t, MaxTimestamp)
	}
	return nil
}

func validateValue(what string, v float64) error {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return Errorf(ErrInvalid, "%s %v is not a finite number", what, v)
	}
	return nil
}
