package jsonscan

import (
	"bytes"
	"fmt"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// MaxDepth is the deepest nesting of arrays and objects Value accepts, as
// encoding/json.
const MaxDepth = 10000

// SyntaxError is malformed JSON.
type SyntaxError struct {
	// Offset is the offending byte's index in the slice scanned (its
	// length when the input ended too soon).
	Offset int
	// Msg says what is wrong.
	Msg string
	// Truncated is true when the input ended inside a value.
	Truncated bool
}

func (e *SyntaxError) Error() string {
	if e.Truncated {
		return fmt.Sprintf("truncated JSON at byte %d: %s", e.Offset, e.Msg)
	}
	return fmt.Sprintf("malformed JSON at byte %d: %s", e.Offset, e.Msg)
}

func truncated(i int, what string) error {
	return &SyntaxError{Offset: i, Msg: "unexpected end of input in " + what, Truncated: true}
}

func invalid(b []byte, i int, what string) error {
	return &SyntaxError{Offset: i, Msg: "invalid character " + quoteChar(b[i]) + " " + what}
}

// quoteChar formats c for an error: 'x', '\n', or 0xff.
func quoteChar(c byte) string {
	if c >= utf8.RuneSelf {
		return fmt.Sprintf("0x%02x", c)
	}
	return strconv.QuoteRune(rune(c))
}

// IsSpace reports whether c is JSON whitespace.
func IsSpace(c byte) bool { return c == ' ' || c == '\n' || c == '\t' || c == '\r' }

// SkipSpace returns the index of the first byte of b from i on that is not
// JSON whitespace (len(b) when there is none).
func SkipSpace(b []byte, i int) int {
	for i < len(b) && IsSpace(b[i]) {
		i++
	}
	return i
}

// Value checks the JSON value that starts at b[i] (no whitespace before
// it) and returns the index just after it.
func Value(b []byte, i int) (int, error) { return value(b, i, 0) }

func value(b []byte, i, depth int) (int, error) {
	if i >= len(b) {
		return i, truncated(i, "a value")
	}
	switch c := b[i]; {
	case c == '"':
		end, _, err := String(b, i)
		return end, err
	case c == '{':
		return object(b, i, depth+1)
	case c == '[':
		return array(b, i, depth+1)
	case c == '-' || c >= '0' && c <= '9':
		return Number(b, i)
	case c == 't':
		return literal(b, i, "true")
	case c == 'f':
		return literal(b, i, "false")
	case c == 'n':
		return literal(b, i, "null")
	}
	return i, invalid(b, i, "looking for the beginning of a value")
}

func literal(b []byte, i int, lit string) (int, error) {
	for k := 0; k < len(lit); k++ {
		if i+k >= len(b) {
			return i + k, truncated(i+k, "literal "+lit)
		}
		if b[i+k] != lit[k] {
			return i + k, invalid(b, i+k, "in literal "+lit)
		}
	}
	return i + len(lit), nil
}

func object(b []byte, i, depth int) (int, error) {
	if depth > MaxDepth {
		return i, &SyntaxError{Offset: i, Msg: fmt.Sprintf("nested deeper than %d", MaxDepth)}
	}
	i = SkipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return i + 1, nil
	}
	for {
		end, err := member(b, i, depth)
		if err != nil {
			return end, err
		}
		i = SkipSpace(b, end)
		if i >= len(b) {
			return i, truncated(i, "an object")
		}
		switch b[i] {
		case ',':
			i = SkipSpace(b, i+1)
		case '}':
			return i + 1, nil
		default:
			return i, invalid(b, i, "after an object member: want ',' or '}'")
		}
	}
}

// member checks `"key" : value` at b[i] and returns its end.
func member(b []byte, i, depth int) (int, error) {
	if i >= len(b) {
		return i, truncated(i, "an object")
	}
	if b[i] != '"' {
		return i, invalid(b, i, "looking for the beginning of an object key")
	}
	end, _, err := String(b, i)
	if err != nil {
		return end, err
	}
	i = SkipSpace(b, end)
	if i >= len(b) {
		return i, truncated(i, "an object")
	}
	if b[i] != ':' {
		return i, invalid(b, i, "after an object key: want ':'")
	}
	return value(b, SkipSpace(b, i+1), depth)
}

func array(b []byte, i, depth int) (int, error) {
	if depth > MaxDepth {
		return i, &SyntaxError{Offset: i, Msg: fmt.Sprintf("nested deeper than %d", MaxDepth)}
	}
	i = SkipSpace(b, i+1)
	if i < len(b) && b[i] == ']' {
		return i + 1, nil
	}
	for {
		end, err := value(b, i, depth)
		if err != nil {
			return end, err
		}
		i = SkipSpace(b, end)
		if i >= len(b) {
			return i, truncated(i, "an array")
		}
		switch b[i] {
		case ',':
			i = SkipSpace(b, i+1)
		case ']':
			return i + 1, nil
		default:
			return i, invalid(b, i, "after an array element: want ',' or ']'")
		}
	}
}

// String checks the JSON string that starts at b[i] (a '"') and returns
// the index just after it and whether it holds an escape.
func String(b []byte, i int) (end int, escaped bool, err error) {
	i++
	for i < len(b) {
		switch c := b[i]; {
		case c == '"':
			return i + 1, escaped, nil
		case c == '\\':
			escaped = true
			if i+1 >= len(b) {
				return i + 1, escaped, truncated(i+1, "a string")
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				for k := i + 2; k < i+6; k++ {
					if k >= len(b) {
						return k, escaped, truncated(k, "a string")
					}
					if !isHex(b[k]) {
						return k, escaped, invalid(b, k, `in a \u escape`)
					}
				}
				i += 6
			default:
				return i + 1, escaped, invalid(b, i+1, "in a string escape")
			}
		case c < 0x20:
			return i, escaped, invalid(b, i, "in a string (control characters must be escaped)")
		default:
			i++
		}
	}
	return i, escaped, truncated(i, "a string")
}

func isHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }

// Number checks the JSON number that starts at b[i] and returns the index
// just after it.
func Number(b []byte, i int) (int, error) {
	if b[i] == '-' {
		i++
	}
	if i >= len(b) {
		return i, truncated(i, "a number")
	}
	switch c := b[i]; {
	case c == '0':
		i++
	case c >= '1' && c <= '9':
		for i++; i < len(b) && isDigit(b[i]); i++ {
		}
	default:
		return i, invalid(b, i, "in a number")
	}
	if i < len(b) && b[i] == '.' {
		i++
		if i >= len(b) {
			return i, truncated(i, "a number")
		}
		if !isDigit(b[i]) {
			return i, invalid(b, i, "after the decimal point of a number")
		}
		for ; i < len(b) && isDigit(b[i]); i++ {
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) {
			return i, truncated(i, "a number")
		}
		if !isDigit(b[i]) {
			return i, invalid(b, i, "in the exponent of a number")
		}
		for ; i < len(b) && isDigit(b[i]); i++ {
		}
	}
	return i, nil
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// Unquote returns the contents of the JSON string raw (with its quotes,
// checked by String): raw itself without the quotes when it holds no
// escape and is valid UTF-8, else decoded into dst[:0]. As encoding/json,
// a lone surrogate escape and each invalid UTF-8 byte become U+FFFD.
func Unquote(dst, raw []byte) []byte {
	s := raw[1 : len(raw)-1]
	k := 0
	for k < len(s) && s[k] != '\\' && s[k] < utf8.RuneSelf {
		k++
	}
	if k == len(s) || bytes.IndexByte(s[k:], '\\') < 0 && utf8.Valid(s[k:]) {
		return s
	}
	dst = dst[:0]
	for i := 0; i < len(s); {
		c := s[i]
		if c != '\\' {
			if c < utf8.RuneSelf {
				dst = append(dst, c)
				i++
				continue
			}
			r, n := utf8.DecodeRune(s[i:])
			dst = utf8.AppendRune(dst, r)
			i += n
			continue
		}
		switch s[i+1] {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r := hex4(s[i+2 : i+6])
			i += 6
			if utf16.IsSurrogate(r) {
				r2 := rune(-1)
				if i+6 <= len(s) && s[i] == '\\' && s[i+1] == 'u' {
					r2 = hex4(s[i+2 : i+6])
				}
				if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
					i += 6
					r = dec
				} else {
					r = utf8.RuneError
				}
			}
			dst = utf8.AppendRune(dst, r)
			continue
		default: // '"', '\\', '/'
			dst = append(dst, s[i+1])
		}
		i += 2
	}
	return dst
}

func hex4(b []byte) rune {
	var r rune
	for _, c := range b {
		switch {
		case c <= '9':
			c -= '0'
		case c <= 'F':
			c -= 'A' - 10
		default:
			c -= 'a' - 10
		}
		r = r<<4 | rune(c)
	}
	return r
}

// Object reads the members of a JSON object in place. Not safe for
// concurrent use.
type Object struct {
	b     []byte
	i     int
	first bool
	done  bool
}

// NewObject starts reading b, which must hold one JSON object and nothing
// else but whitespace. ok is false when b holds another JSON value (or
// none): kind then names what it holds ("array", "string", "number",
// "bool", "null", or "" when it is not JSON).
func NewObject(b []byte) (o Object, kind string) {
	i := SkipSpace(b, 0)
	if i < len(b) && b[i] == '{' {
		return Object{b: b, i: i + 1, first: true}, "object"
	}
	if i < len(b) {
		switch c := b[i]; {
		case c == '[':
			kind = "array"
		case c == '"':
			kind = "string"
		case c == '-' || isDigit(c):
			kind = "number"
		case c == 't' || c == 'f':
			kind = "bool"
		case c == 'n':
			kind = "null"
		}
	}
	return Object{b: b, done: true}, kind
}

// Next returns the next member: its key (a JSON string with its quotes,
// for Unquote) and its value (raw, checked by Value). ok is false at the
// end of the object, after which Next checks that only whitespace
// follows.
func (o *Object) Next() (key, val []byte, ok bool, err error) {
	if o.done {
		return nil, nil, false, nil
	}
	b := o.b
	i := SkipSpace(b, o.i)
	if i >= len(b) {
		return nil, nil, false, truncated(i, "an object")
	}
	if !o.first {
		switch b[i] {
		case ',':
			i = SkipSpace(b, i+1)
		case '}':
			return nil, nil, false, o.end(i + 1)
		default:
			return nil, nil, false, invalid(b, i, "after an object member: want ',' or '}'")
		}
	} else if b[i] == '}' {
		return nil, nil, false, o.end(i + 1)
	}
	o.first = false
	if i >= len(b) {
		return nil, nil, false, truncated(i, "an object")
	}
	if b[i] != '"' {
		return nil, nil, false, invalid(b, i, "looking for the beginning of an object key")
	}
	kend, _, err := String(b, i)
	if err != nil {
		return nil, nil, false, err
	}
	key = b[i:kend]
	i = SkipSpace(b, kend)
	if i >= len(b) {
		return nil, nil, false, truncated(i, "an object")
	}
	if b[i] != ':' {
		return nil, nil, false, invalid(b, i, "after an object key: want ':'")
	}
	i = SkipSpace(b, i+1)
	vend, err := value(b, i, 1)
	if err != nil {
		return nil, nil, false, err
	}
	o.i = vend
	return key, b[i:vend], true, nil
}

func (o *Object) end(i int) error {
	o.done = true
	if i = SkipSpace(o.b, i); i < len(o.b) {
		return invalid(o.b, i, "after the object")
	}
	return nil
}
