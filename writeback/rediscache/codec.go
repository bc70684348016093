package rediscache

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/hourglass-io/hourglass/internal/wire"
	"github.com/hourglass-io/hourglass/tsstore"
)

// A log entry (one per batch, the field "b" of a stream entry) holds the
// batch's raw points:
//
//	byte    version (1)
//	uvarint n
//	varint  base timestamp (ms)
//	n points: str metric, uvarint label count, (str name, str value) per
//	          label, varint timestamp - base, value
//
// A str is a reference into the entry's string table: uvarint 0 is followed
// by a new string (uvarint length, bytes) that takes the next index; k > 0
// is the string with index k-1. Metric and label names and most label
// values repeat within a batch, so a point takes about 8 to 12 bytes.
// A value is uvarint(zigzag(i) << 1) when it is an integer i with
// |i| <= 2^53 (not -0), else byte 1 followed by the 8 bytes of its
// IEEE 754 bits, little-endian.
const logVersion = 1

var errCorrupt = errors.New("corrupt log entry")

// logEncoder encodes log entries; it keeps its buffers between batches.
// Not safe for concurrent use.
type logEncoder struct {
	strs map[string]int
	b    []byte
	// last holds, per position in a point (metric, then label names and
	// values), the string there in the previous point and its index:
	// points of a batch often share the very same strings, and comparing
	// identical strings is cheaper than a map lookup.
	last [2 + 2*8]lastStr
}

type lastStr struct {
	s string
	k int
}

// str writes s, which is at position pos of its point.
func (e *logEncoder) str(s string, pos int) {
	var ls *lastStr
	if pos < len(e.last) {
		ls = &e.last[pos]
		if ls.k > 0 && ls.s == s {
			e.b = binary.AppendUvarint(e.b, uint64(ls.k))
			return
		}
	}
	if k, ok := e.strs[s]; ok {
		e.b = binary.AppendUvarint(e.b, uint64(k+1))
		if ls != nil {
			*ls = lastStr{s, k + 1}
		}
		return
	}
	e.strs[s] = len(e.strs)
	if ls != nil {
		*ls = lastStr{s, len(e.strs)}
	}
	e.b = append(e.b, 0)
	e.b = binary.AppendUvarint(e.b, uint64(len(s)))
	e.b = append(e.b, s...)
}

const maxExactInt = 1 << 53

func appendValue(b []byte, v float64) []byte {
	if v == math.Trunc(v) && math.Abs(v) <= maxExactInt && !(v == 0 && math.Signbit(v)) {
		i := int64(v)
		zz := uint64(i<<1) ^ uint64(i>>63)
		return binary.AppendUvarint(b, zz<<1)
	}
	b = append(b, 1)
	return binary.LittleEndian.AppendUint64(b, math.Float64bits(v))
}

// encode returns the entry of ps, valid until the next call.
func (e *logEncoder) encode(ps []tsstore.Point) []byte {
	if e.strs == nil {
		e.strs = make(map[string]int)
	}
	clear(e.strs)
	clear(e.last[:])
	e.b = append(e.b[:0], logVersion)
	e.b = binary.AppendUvarint(e.b, uint64(len(ps)))
	var base int64
	if len(ps) > 0 {
		base = ps[0].Timestamp
	}
	e.b = binary.AppendVarint(e.b, base)
	for i := range ps {
		p := &ps[i]
		e.str(p.Metric, 0)
		e.b = binary.AppendUvarint(e.b, uint64(len(p.Labels)))
		for j, l := range p.Labels {
			e.str(l.Name, 1+2*j)
			e.str(l.Value, 2+2*j)
		}
		e.b = binary.AppendVarint(e.b, p.Timestamp-base)
		e.b = appendValue(e.b, p.Value)
	}
	return e.b
}

// entryPoints returns the number of points in a log entry.
func entryPoints(entry string) (int64, error) {
	if len(entry) == 0 || entry[0] != logVersion {
		return 0, errCorrupt
	}
	n, k := binary.Uvarint([]byte(entry[1:min(len(entry), 11)]))
	if k <= 0 {
		return 0, errCorrupt
	}
	return int64(n), nil
}

// logDecoder reads an entry: wire's primitives, plus the string table and
// the tagged values of the log's encoding.
type logDecoder struct {
	wire.Reader
	strs []string
}

func (d *logDecoder) str() string {
	k := d.Uvarint()
	if d.Err != nil {
		return ""
	}
	if k > 0 {
		if k > uint64(len(d.strs)) {
			d.Err = errCorrupt
			return ""
		}
		return d.strs[k-1]
	}
	s := d.String()
	if d.Err == nil {
		d.strs = append(d.strs, s)
	}
	return s
}

func (d *logDecoder) value() float64 {
	tag := d.Uvarint()
	if d.Err != nil {
		return 0
	}
	if tag&1 == 0 {
		zz := tag >> 1
		return float64(int64(zz>>1) ^ -int64(zz&1))
	}
	if tag != 1 {
		d.Err = errCorrupt
		return 0
	}
	return d.Float64()
}

// decodeLog appends the points of an entry to ps.
func decodeLog(ps []tsstore.Point, entry []byte) ([]tsstore.Point, error) {
	if len(entry) == 0 || entry[0] != logVersion {
		return ps, fmt.Errorf("%w: unknown version", errCorrupt)
	}
	d := logDecoder{Reader: wire.Reader{B: entry[1:]}}
	n := d.Count()
	base := d.Varint()
	for i := 0; i < n && d.Err == nil; i++ {
		var p tsstore.Point
		p.Metric = d.str()
		nl := d.Uvarint()
		if nl > tsstore.MaxLabels {
			d.Err = errCorrupt
			break
		}
		if nl > 0 {
			p.Labels = make(tsstore.Labels, nl)
			for j := range p.Labels {
				p.Labels[j].Name = d.str()
				p.Labels[j].Value = d.str()
			}
		}
		p.Timestamp = base + d.Varint()
		p.Value = d.value()
		ps = append(ps, p)
	}
	if err := d.End(); err != nil {
		return ps, errCorrupt
	}
	return ps, nil
}

// A cell is a field of its shard and generation's cells hash:
//
//	metric 0xff <index label value> 0xff <start: 8 bytes big-endian>
//	then the series' other labels, each name 0xfe value 0xff
//
// (bytes that valid UTF-8 never holds, so the parts are unambiguous). The
// same string is a member of the generation's index, a sorted set of
// score 0 ordered by bytes: the cells of one metric and index label value
// are one ZRANGE BYLEX range, and their starts order them within it. The
// field's value is the Agg as four little-endian float64s: count, sum,
// min, max (what the Lua script's struct.pack('<dddd') reads and writes; a
// count is exact up to 2^53).
func appendFieldPrefix(b []byte, metric, value string) []byte {
	b = append(b, metric...)
	b = append(b, 0xff)
	b = append(b, value...)
	return append(b, 0xff)
}

func appendField(b []byte, metric, value string, start int64, ls tsstore.Labels, indexLabel string) []byte {
	b = appendFieldPrefix(b, metric, value)
	b = binary.BigEndian.AppendUint64(b, uint64(start))
	for _, l := range ls {
		if l.Name == indexLabel {
			continue
		}
		b = append(b, l.Name...)
		b = append(b, 0xfe)
		b = append(b, l.Value...)
		b = append(b, 0xff)
	}
	return b
}

// parsedField is a decoded cell field.
type parsedField struct {
	metric, value string
	start         int64
	rest          string // the other labels
}

func parseField(f string) (parsedField, error) {
	var p parsedField
	i := strings.IndexByte(f, 0xff)
	if i < 0 {
		return p, fmt.Errorf("rediscache: corrupt cell field %q", f)
	}
	j := strings.IndexByte(f[i+1:], 0xff)
	if j < 0 || len(f) < i+1+j+1+8 {
		return p, fmt.Errorf("rediscache: corrupt cell field %q", f)
	}
	p.metric, p.value = f[:i], f[i+1:i+1+j]
	k := i + 1 + j + 1
	p.start = int64(binary.BigEndian.Uint64([]byte(f[k : k+8])))
	p.rest = f[k+8:]
	return p, nil
}

// labels decodes the field's labels, adding the index label unless its
// value is empty.
func (p *parsedField) labels(indexLabel string) (tsstore.Labels, error) {
	rest, v := p.rest, p.value
	n := strings.Count(rest, "\xff")
	if v != "" {
		n++
	}
	ls := make(tsstore.Labels, 0, n)
	added := v == ""
	for rest != "" {
		i := strings.IndexByte(rest, 0xfe)
		j := strings.IndexByte(rest, 0xff)
		if i < 0 || j < i {
			return nil, fmt.Errorf("rediscache: corrupt cell labels %q", rest)
		}
		name := rest[:i]
		if !added && name > indexLabel {
			ls = append(ls, tsstore.Label{Name: indexLabel, Value: v})
			added = true
		}
		ls = append(ls, tsstore.Label{Name: name, Value: rest[i+1 : j]})
		rest = rest[j+1:]
	}
	if !added {
		ls = append(ls, tsstore.Label{Name: indexLabel, Value: v})
	}
	return ls, nil
}

const aggLen = 32

func appendAgg(b []byte, a tsstore.Agg) []byte {
	b = binary.LittleEndian.AppendUint64(b, math.Float64bits(float64(a.Count)))
	b = binary.LittleEndian.AppendUint64(b, math.Float64bits(a.Sum))
	b = binary.LittleEndian.AppendUint64(b, math.Float64bits(a.Min))
	return binary.LittleEndian.AppendUint64(b, math.Float64bits(a.Max))
}

func decodeAgg(s string) (tsstore.Agg, error) {
	if len(s) != aggLen {
		return tsstore.Agg{}, fmt.Errorf("rediscache: corrupt cell value of %d bytes", len(s))
	}
	f := func(i int) float64 {
		var u uint64
		for k := 7; k >= 0; k-- {
			u = u<<8 | uint64(s[i+k])
		}
		return math.Float64frombits(u)
	}
	return tsstore.Agg{Count: uint64(f(0)), Sum: f(8), Min: f(16), Max: f(24)}, nil
}
