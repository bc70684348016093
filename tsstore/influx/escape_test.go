package influx

import (
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	lp "github.com/influxdata/line-protocol"

	"github.com/hourglass-io/hourglass/tsstore"
)

var awkwardValues = []string{
	"a b", "a,b", "a=b", `a"b`, `a\b`, "a'b", "ünïcødé ✓", "tab\there", "new\nline", "cr\rlf",
	"{braces}", "a.b*c+?", " lead", "trail ", "$dollar", "100%", `trailing\`, `\`, `\\`, `a\,b`,
	`a\ b`, `a\=b`, "%%hg:", "%%hg:%41", "%%hg:zz", "/slash/", `\/`, "${x}", "#hash", "=", ",", " ",
	"\x7f", "\x00nul", "a\u2028b", "日本語 テキスト",
}

func TestTagValueEncoding(t *testing.T) {
	for _, v := range awkwardValues {
		enc := encodeTagValue(v)
		if got := decodeTagValue(enc); got != v {
			t.Errorf("decode(encode(%q)) = %q (encoded %q)", v, got, enc)
		}
		if strings.ContainsAny(enc, "\n\r\\") {
			t.Errorf("encode(%q) = %q still holds a newline or backslash", v, enc)
		}
		if !needsEncoding(v) && enc != v {
			t.Errorf("encode(%q) = %q, want it unchanged", v, enc)
		}
	}
	if got := decodeTagValue("%%hg:%4"); got != "%%hg:%4" {
		t.Errorf("a malformed encoding decoded to %q, want it as it is", got)
	}
}

func TestTagKeys(t *testing.T) {
	for _, name := range []string{"time", "count", "sum", "min", "max", "result", "table", "_field", "_measurement", "_start", "_stop", "_time", "_value", "merchant", "_x", "t"} {
		if got := labelName(tagKey(name)); got != name {
			t.Errorf("labelName(tagKey(%q)) = %q", name, got)
		}
	}
	if tagKey("time") == "time" {
		t.Error(`label "time" is stored as tag key "time", which InfluxDB refuses`)
	}
}

// checkLineRoundTrip encodes a cell whose label v has value v and parses
// the line with influxdata/line-protocol's parser.
func checkLineRoundTrip(t *testing.T, v string) {
	c := tsstore.Cell{Metric: "m:x_1", Labels: tsstore.Labels{{Name: "merchant", Value: "m1"}, {Name: "time", Value: v}, {Name: "v", Value: v}}, Start: 60000, Writer: "a1:b2/3_x.y-z", Seq: 7, Agg: tsstore.Agg{Count: 3, Sum: 1e21, Min: -0.5, Max: 5e-324}}
	line := appendLine(nil, &c)
	if strings.Count(string(line), "\n") != 1 {
		t.Fatalf("line for %q spans lines: %q", v, line)
	}
	h := lp.NewMetricHandler()
	h.SetTimePrecision(1e6)
	ms, err := lp.NewParser(h).Parse(line)
	if err != nil || len(ms) != 1 {
		t.Fatalf("parse %q: %v (%d metrics)", line, err, len(ms))
	}
	m := ms[0]
	if m.Name() != c.Metric {
		t.Errorf("measurement %q, want %q", m.Name(), c.Metric)
	}
	tags := map[string]string{}
	for _, tg := range m.TagList() {
		tags[tg.Key] = tg.Value
	}
	if got, writer := labelsOfTags(tags); !got.Equal(c.Labels) || writer != c.Writer {
		t.Errorf("line %q: labels %v and writer %q, want %v and %q", line, got, writer, c.Labels, c.Writer)
	}
	f := map[string]any{}
	for _, fl := range m.FieldList() {
		f[fl.Key] = fl.Value
	}
	if f["count"] != int64(3) || f["sum"] != 1e21 || f["min"] != -0.5 || f["max"] != 5e-324 {
		t.Errorf("line %q: fields %v", line, f)
	}
	if m.Time().UnixMilli() != 60007 {
		t.Errorf("line %q: time %v, want 60007 ms", line, m.Time().UnixMilli())
	}
}

// unquoteRegexInfluxQL reads a regex literal as InfluxQL's (and Flux's)
// scanner does: \/ is a slash, every other escape pair is kept as it is.
func unquoteRegexInfluxQL(t *testing.T, lit string) string {
	if len(lit) < 2 || lit[0] != '/' || lit[len(lit)-1] != '/' {
		t.Fatalf("regex literal %q is not /.../", lit)
	}
	in := lit[1 : len(lit)-1]
	var b strings.Builder
	for i := 0; i < len(in); i++ {
		switch c := in[i]; {
		case c == '\\' && i+1 < len(in):
			if in[i+1] == '/' {
				b.WriteByte('/')
			} else {
				b.WriteByte('\\')
				b.WriteByte(in[i+1])
			}
			i++
		case c == '/':
			t.Fatalf("regex literal %q ends early at %d", lit, i+1)
		case c == '\n':
			t.Fatalf("regex literal %q holds a newline", lit)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func checkRegexRoundTrip(t *testing.T, v string) {
	for _, re := range []string{regexp.QuoteMeta(v), regexp.QuoteMeta(v) + "|x/y", "(?:" + regexp.QuoteMeta(v) + ")?"} {
		lit := quoteRegex(anchored(re))
		got, err := regexp.Compile(unquoteRegexInfluxQL(t, lit))
		if err != nil {
			t.Fatalf("literal %q of %q does not compile: %v", lit, re, err)
		}
		if !got.MatchString(v) || got.MatchString(v+"x") {
			t.Errorf("literal %q of %q: match %q = %v, match %q = %v", lit, re, v, got.MatchString(v), v+"x", got.MatchString(v+"x"))
		}
	}
}

// unquoteStringInfluxQL reads a single-quoted InfluxQL string as its
// scanner does (\\, \', \" and \n are the escapes).
func unquoteStringInfluxQL(t *testing.T, lit string) string {
	in := lit[1 : len(lit)-1]
	var b strings.Builder
	for i := 0; i < len(in); i++ {
		c := in[i]
		if c == '\'' {
			t.Fatalf("string literal %q ends early", lit)
		}
		if c != '\\' {
			b.WriteByte(c)
			continue
		}
		i++
		switch in[i] {
		case '\\', '\'', '"':
			b.WriteByte(in[i])
		case 'n':
			b.WriteByte('\n')
		default:
			t.Fatalf("string literal %q: bad escape \\%c", lit, in[i])
		}
	}
	return b.String()
}

func TestEscapeSeeds(t *testing.T) {
	for _, v := range awkwardValues {
		checkLineRoundTrip(t, v)
		checkRegexRoundTrip(t, v)
		if got := unquoteStringInfluxQL(t, quoteString(encodeTagValue(v))); got != encodeTagValue(v) {
			t.Errorf("string literal of %q reads as %q", v, got)
		}
	}
}

// FuzzEscapeLineProtocol checks that every label value (non-empty UTF-8)
// survives line protocol (parsed by influxdata/line-protocol), the
// InfluxQL string literal of its stored form, and a regexp literal that
// matches it exactly.
func FuzzEscapeLineProtocol(f *testing.F) {
	for _, v := range awkwardValues {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, v string) {
		if v == "" || !utf8.ValidString(v) || len(v) > tsstore.MaxValueLen {
			t.Skip()
		}
		if decodeTagValue(encodeTagValue(v)) != v {
			t.Fatalf("decode(encode(%q)) = %q", v, decodeTagValue(encodeTagValue(v)))
		}
		checkLineRoundTrip(t, v)
		checkRegexRoundTrip(t, v)
		if got := unquoteStringInfluxQL(t, quoteString(encodeTagValue(v))); got != encodeTagValue(v) {
			t.Fatalf("string literal of %q reads as %q", v, got)
		}
	})
}
