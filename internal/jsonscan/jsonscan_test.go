package jsonscan

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"pgregory.net/rapid"
)

// genJSON makes JSON-ish text: valid values, with some bytes changed,
// dropped or added.
func genJSON(t *rapid.T) []byte {
	var b strings.Builder
	var val func(depth int)
	val = func(depth int) {
		switch k := rapid.IntRange(0, 6).Draw(t, "kind"); {
		case k == 0 && depth < 4:
			b.WriteByte('{')
			for i := range rapid.IntRange(0, 3).Draw(t, "members") {
				if i > 0 {
					b.WriteString(rapid.SampledFrom([]string{",", " , ", ",\n"}).Draw(t, "comma"))
				}
				b.WriteString(quote(t))
				b.WriteString(rapid.SampledFrom([]string{":", " : "}).Draw(t, "colon"))
				val(depth + 1)
			}
			b.WriteByte('}')
		case k == 1 && depth < 4:
			b.WriteByte('[')
			for i := range rapid.IntRange(0, 3).Draw(t, "elements") {
				if i > 0 {
					b.WriteString(",\t")
				}
				val(depth + 1)
			}
			b.WriteByte(']')
		case k == 2:
			b.WriteString(quote(t))
		case k == 3:
			b.WriteString(rapid.SampledFrom([]string{"0", "-0", "12", "-3.25", "1e400", "6.02E+23", "1.5e-3", "01", "1.", "-", "1e", ".5", "+1", "0x1"}).Draw(t, "number"))
		default:
			b.WriteString(rapid.SampledFrom([]string{"true", "false", "null", "nul", "tru", "True"}).Draw(t, "literal"))
		}
	}
	b.WriteString(rapid.SampledFrom([]string{"", " ", "\n\t"}).Draw(t, "lead"))
	val(0)
	out := []byte(b.String())
	for range rapid.IntRange(0, 2).Draw(t, "mutations") {
		if len(out) == 0 {
			break
		}
		i := rapid.IntRange(0, len(out)-1).Draw(t, "at")
		switch rapid.IntRange(0, 2).Draw(t, "mutation") {
		case 0:
			out = append(out[:i], out[i+1:]...)
		case 1:
			out[i] = rapid.SampledFrom([]byte("{}[]\",:\\ \x01\xff0a-")).Draw(t, "byte")
		default:
			out = out[:i]
		}
	}
	return out
}

// quote makes a JSON string, with escapes of every kind.
func quote(t *rapid.T) string {
	s := rapid.StringOf(rapid.SampledFrom([]rune("aZ9 /é€\"\\\n\t\x01\U0001F600"))).Draw(t, "string")
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteString(`\` + string(r))
		case r < 0x20 && rapid.Bool().Draw(t, "u-escape"):
			b.WriteString(`\u00` + string("0123456789abcdef"[r>>4]) + string("0123456789abcdef"[r&15]))
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == 0x1F600 && rapid.Bool().Draw(t, "surrogates"):
			b.WriteString(`\ud83d\ude00`)
		case r == 'é' && rapid.Bool().Draw(t, "lone surrogate"):
			b.WriteString(`\ud83d`)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// TestValueAgreesWithEncodingJSON: a body is one valid value (with
// whitespace around) by Value exactly when json.Valid says so, and a string
// unquotes as json.Unmarshal unquotes it.
func TestValueAgreesWithEncodingJSON(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		b := genJSON(t)
		i := SkipSpace(b, 0)
		end, err := Value(b, i)
		ok := err == nil && SkipSpace(b, end) == len(b)
		if want := json.Valid(b); ok != want {
			t.Fatalf("%q: Value %d, %v; json.Valid %v", b, end, err, want)
		}
		var se *SyntaxError
		if err != nil && (!errors.As(err, &se) || se.Offset < i || se.Offset > len(b)) {
			t.Fatalf("%q: error %v is not a SyntaxError within the input", b, err)
		}
		if ok && b[i] == '"' {
			var want string
			if err := json.Unmarshal(b, &want); err != nil {
				t.Fatal(err)
			}
			if got := Unquote(nil, b[i:end]); string(got) != want {
				t.Fatalf("Unquote(%s) = %q, want %q", b[i:end], got, want)
			}
		}
	})
}

// TestObjectReadsMembers: Object reads a valid object's members as
// json.Unmarshal into a map does, and refuses what json.Valid refuses.
func TestObjectReadsMembers(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		b := genJSON(t)
		o, kind := NewObject(b)
		got := map[string]string{}
		var err error
		for kind == "object" {
			var k, v []byte
			var ok bool
			if k, v, ok, err = o.Next(); err != nil || !ok {
				break
			}
			got[string(Unquote(nil, k))] = string(v)
		}
		var want map[string]json.RawMessage
		werr := json.Unmarshal(b, &want)
		if kind != "object" {
			if json.Valid(b) {
				var v any
				d := json.NewDecoder(bytes.NewReader(b))
				d.UseNumber() // 1e400 is a valid number too
				if err := d.Decode(&v); err != nil {
					t.Fatalf("%q: json.Valid but not decoded: %v", b, err)
				}
				var want string
				switch v.(type) {
				case []any:
					want = "array"
				case string:
					want = "string"
				case json.Number:
					want = "number"
				case bool:
					want = "bool"
				case nil:
					want = "null"
				case map[string]any:
					want = "object"
				}
				if kind != want {
					t.Fatalf("%q: kind %q of a valid %s", b, kind, want)
				}
			}
			return
		}
		if (err == nil) != (werr == nil) {
			t.Fatalf("%q: Object %v, json.Unmarshal %v", b, err, werr)
		}
		for k, v := range want {
			if utf8.ValidString(k) && got[k] != string(v) {
				t.Fatalf("%q: member %q = %s, want %s", b, k, got[k], v)
			}
		}
		if err == nil && len(got) != len(want) {
			t.Fatalf("%q: %d members, want %d", b, len(got), len(want))
		}
	})
}
