package influx

import (
	"slices"
	"strconv"
	"strings"

	"github.com/hourglass-io/hourglass/tsstore"
)

// The fields of the point of a cell.
const (
	fieldCount = "count"
	fieldSum   = "sum"
	fieldMin   = "min"
	fieldMax   = "max"
)

// encodedPrefix marks a tag value stored in the reversible encoding of
// encodeTagValue.
const encodedPrefix = "%%hg:"

// writerTag is the tag key of a cell's writer, absent for the legacy
// writer "". No label maps to it: a label name never starts with "__",
// and tagKey prefixes only the reserved names, none of which is
// "writer__". Writer names need no escaping in line protocol or InfluxQL
// strings ([a-zA-Z0-9_.:/-], see tsstore.ValidateWriter).
const writerTag = tsstore.WriterLabel

// reservedTagKeys are label names that cannot be used as tag keys as they
// are: "time" is refused by InfluxDB, the fields' names would be ambiguous
// in InfluxQL, and the rest are columns of Flux tables. They are stored as
// "__" + name (tsstore reserves label names starting with "__", so the
// mapping cannot collide).
var reservedTagKeys = map[string]bool{
	"time": true, fieldCount: true, fieldSum: true, fieldMin: true, fieldMax: true,
	"_field": true, "_measurement": true, "_start": true, "_stop": true, "_time": true, "_value": true,
	"result": true, "table": true,
}

// tagKey returns the tag key that stores the label name.
func tagKey(name string) string {
	if reservedTagKeys[name] {
		return "__" + name
	}
	return name
}

// labelName returns the label name stored under the tag key k.
func labelName(k string) string {
	if strings.HasPrefix(k, "__") {
		return k[2:]
	}
	return k
}

// needsEncoding reports whether the label value v cannot be stored as a tag
// value as it is: line protocol cannot carry newlines, and a backslash (in
// particular a trailing one) is read differently by different InfluxDB
// versions' parsers; control characters are encoded for good measure, and
// values that start with the marker so that decoding is unambiguous.
func needsEncoding(v string) bool {
	if strings.HasPrefix(v, encodedPrefix) {
		return true
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x20 || c == 0x7f || c == '\\' {
			return true
		}
	}
	return false
}

const hexDigits = "0123456789ABCDEF"

// encodeTagValue returns the tag value that stores the label value v: v
// itself, or when needsEncoding(v), encodedPrefix followed by v with every
// control character, backslash and percent sign written as %XX.
func encodeTagValue(v string) string {
	if !needsEncoding(v) {
		return v
	}
	var b strings.Builder
	b.Grow(len(encodedPrefix) + len(v) + 8)
	b.WriteString(encodedPrefix)
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c < 0x20 || c == 0x7f || c == '\\' || c == '%' {
			b.WriteByte('%')
			b.WriteByte(hexDigits[c>>4])
			b.WriteByte(hexDigits[c&15])
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
}

// decodeTagValue inverts encodeTagValue. A value that starts with the
// marker but is not a valid encoding (written by someone else) is returned
// as it is.
func decodeTagValue(s string) string {
	if !strings.HasPrefix(s, encodedPrefix) {
		return s
	}
	rest := s[len(encodedPrefix):]
	out := make([]byte, 0, len(rest))
	for i := 0; i < len(rest); i++ {
		c := rest[i]
		if c != '%' {
			out = append(out, c)
			continue
		}
		if i+2 >= len(rest) {
			return s
		}
		hi, lo := unhex(rest[i+1]), unhex(rest[i+2])
		if hi < 0 || lo < 0 {
			return s
		}
		out = append(out, byte(hi<<4|lo))
		i += 2
	}
	return string(out)
}

func unhex(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	}
	return -1
}

// appendEscaped appends s with a backslash before every byte in special.
func appendEscaped(b []byte, s, special string) []byte {
	if !strings.ContainsAny(s, special) {
		return append(b, s...)
	}
	for i := 0; i < len(s); i++ {
		if strings.IndexByte(special, s[i]) >= 0 {
			b = append(b, '\\')
		}
		b = append(b, s[i])
	}
	return b
}

// Line-protocol escaping: measurements escape commas and spaces; tag keys,
// tag values and field keys also equals signs.
const (
	measurementSpecial = ", "
	tagSpecial         = ",= "
)

// lineEncoder appends cells' lines, reusing the encoded series key
// (measurement and tags) of the previous cell when the next one is of the
// same series, as consecutive cells of a flush usually are. Not safe for
// concurrent use.
type lineEncoder struct {
	metric string
	labels tsstore.Labels
	writer string
	key    []byte
}

// appendLine appends the line-protocol line of the cell c (validated):
// measurement = metric, one tag per label and the writer tag, integer
// field count and float fields sum, min and max, timestamp Start+Seq in ms.
func (e *lineEncoder) appendLine(b []byte, c *tsstore.Cell) []byte {
	if e.key == nil || c.Metric != e.metric || c.Writer != e.writer || !c.Labels.Equal(e.labels) {
		e.metric, e.labels, e.writer = c.Metric, c.Labels, c.Writer
		e.key = appendSeriesKey(e.key[:0], c)
	}
	b = append(b, e.key...)
	b = append(b, " count="...)
	b = strconv.AppendUint(b, c.Count, 10)
	b = append(b, "i,max="...)
	b = strconv.AppendFloat(b, c.Max, 'g', -1, 64)
	b = append(b, ",min="...)
	b = strconv.AppendFloat(b, c.Min, 'g', -1, 64)
	b = append(b, ",sum="...)
	b = strconv.AppendFloat(b, c.Sum, 'g', -1, 64)
	b = append(b, ' ')
	b = strconv.AppendInt(b, c.Start+int64(c.Seq), 10)
	return append(b, '\n')
}

// appendLine appends the line of c with a fresh encoder.
func appendLine(b []byte, c *tsstore.Cell) []byte {
	var e lineEncoder
	return e.appendLine(b, c)
}

// appendSeriesKey appends the measurement and tags of c's line.
func appendSeriesKey(b []byte, c *tsstore.Cell) []byte {
	b = appendEscaped(b, c.Metric, measurementSpecial)
	for _, l := range c.Labels {
		b = append(b, ',')
		b = appendEscaped(b, tagKey(l.Name), tagSpecial)
		b = append(b, '=')
		b = appendEscaped(b, encodeTagValue(l.Value), tagSpecial)
	}
	if c.Writer != "" {
		b = append(b, ","+writerTag+"="...)
		b = append(b, c.Writer...)
	}
	return b
}

// labelsOfTags returns the labels stored in the tags of a series as InfluxDB
// returns them, and the writer (the writer tag, or "" without one): empty
// values (tags the series does not have) are left out, keys and values
// decoded. The labels are sorted but not validated (data written by others
// may hold any tag key).
func labelsOfTags(tags map[string]string) (tsstore.Labels, string) {
	ls := make(tsstore.Labels, 0, len(tags))
	writer := ""
	for k, v := range tags {
		if v == "" {
			continue
		}
		if k == writerTag {
			writer = v
			continue
		}
		ls = append(ls, tsstore.Label{Name: labelName(k), Value: decodeTagValue(v)})
	}
	slices.SortFunc(ls, func(a, b tsstore.Label) int { return strings.Compare(a.Name, b.Name) })
	return ls, writer
}

// maxSeriesKeyLen is InfluxDB's limit on the length of a series key (the
// measurement and tags part of a line).
const maxSeriesKeyLen = 65535

// seriesKeyLen returns the length of the series key of c's line, or a
// number not above it when that is far below the limit.
func seriesKeyLen(c *tsstore.Cell) int {
	// Escaping and encoding at most triple a byte: skip the exact count
	// when even that stays within the limit.
	n := len(c.Metric) + len(writerTag) + len(c.Writer) + 2
	for _, l := range c.Labels {
		n += len(l.Name) + len(l.Value) + len(encodedPrefix) + 4
	}
	if 3*n <= maxSeriesKeyLen {
		return n
	}
	return len(appendSeriesKey(nil, c))
}
