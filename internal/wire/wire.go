// Package wire is the binary encoding shared by hourglass's own logs: the
// local cache's write-ahead log, the replicas' hint logs and promtsdb's
// redo log. It has append functions for the primitives (uvarint and
// varint as in encoding/binary, a string as a uvarint length and its
// bytes, a float64 as 8 bytes little endian), a Reader with a sticky
// error for them, and the encodings of points and cells built on them.
//
// Each log keeps its own record framing (length, checksum, version); wire
// is only what goes inside.
package wire

import (
	"encoding/binary"
	"errors"
	"math"
)

// ErrCorrupt is the error of a Reader that met bytes it cannot decode (a
// short or malformed value, or a length beyond the input).
var ErrCorrupt = errors.New("corrupt encoding")

// AppendString appends s as its uvarint length and its bytes.
func AppendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// AppendFloat64 appends the IEEE 754 bits of v, little endian.
func AppendFloat64(b []byte, v float64) []byte {
	return binary.LittleEndian.AppendUint64(b, math.Float64bits(v))
}

// Reader decodes the primitives from B, advancing it. After the first
// failure Err is ErrCorrupt and every method returns a zero value, so a
// decoder can read a whole record and check Err once.
type Reader struct {
	B   []byte
	Err error
	// Intern, when not nil, is used to share the strings String returns
	// (up to 64 bytes long): metric and label names repeat within a record.
	Intern map[string]string
}

func (r *Reader) fail() {
	r.Err, r.B = ErrCorrupt, nil
}

// Uvarint reads an unsigned varint.
func (r *Reader) Uvarint() uint64 {
	if r.Err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.B)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.B = r.B[n:]
	return v
}

// Varint reads a signed (zig-zag) varint.
func (r *Reader) Varint() int64 {
	if r.Err != nil {
		return 0
	}
	v, n := binary.Varint(r.B)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.B = r.B[n:]
	return v
}

// Count reads a uvarint that counts the items that follow, each at least
// one byte long: a count beyond the remaining input is corrupt (and would
// otherwise size an allocation).
func (r *Reader) Count() int {
	n := r.Uvarint()
	if n > uint64(len(r.B)) {
		r.fail()
		return 0
	}
	return int(n)
}

// Bytes reads n bytes, sharing the input's memory.
func (r *Reader) Bytes(n uint64) []byte {
	if r.Err != nil {
		return nil
	}
	if n > uint64(len(r.B)) {
		r.fail()
		return nil
	}
	b := r.B[:n:n]
	r.B = r.B[n:]
	return b
}

// String reads a string written by AppendString.
func (r *Reader) String() string {
	raw := r.Bytes(r.Uvarint())
	if r.Err != nil {
		return ""
	}
	if r.Intern == nil {
		return string(raw)
	}
	if s, ok := r.Intern[string(raw)]; ok {
		return s
	}
	s := string(raw)
	if len(s) <= 64 {
		r.Intern[s] = s
	}
	return s
}

// Float64 reads a float64 written by AppendFloat64.
func (r *Reader) Float64() float64 {
	b := r.Bytes(8)
	if r.Err != nil {
		return 0
	}
	return math.Float64frombits(binary.LittleEndian.Uint64(b))
}

// Byte reads one byte.
func (r *Reader) Byte() byte {
	b := r.Bytes(1)
	if r.Err != nil {
		return 0
	}
	return b[0]
}

// End fails the Reader unless all of its input was read; it returns Err.
func (r *Reader) End() error {
	if r.Err == nil && len(r.B) != 0 {
		r.fail()
	}
	return r.Err
}
