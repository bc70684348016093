package localcache

import (
	"encoding/binary"
	"slices"
	"time"
	"unsafe"

	"github.com/hourglass-io/hourglass/internal/wire"
)

// encoder writes batch records (see codec.go); it keeps its tables and
// buffers between batches. Not safe for concurrent use.
type encoder struct {
	strIDs map[string]uint32 // the section's strings, by content
	strs   []byte            // their encodings
	setBuf []byte            // the section's label sets, encoded
	remap  []int32           // each series' number in the section
	// A cache of intern by the strings' memory: a batch's metrics and
	// label names are a few strings, each in one place.
	seen [256]seenString
}

type seenString struct {
	p     *byte
	n     int
	id    uint32
	valid bool // a zero slot must not match an empty string at nil
}

func newEncoder() *encoder { return &encoder{strIDs: make(map[string]uint32)} }

// batch appends the payload of a batch record of the points raw and
// processed grouped, processed nil when the processed points are the raw
// ones.
func (e *encoder) batch(b []byte, width time.Duration, raw, processed *grouper) []byte {
	b = append(b, 0)
	b = binary.AppendUvarint(b, recordVersion)
	b = binary.AppendUvarint(b, uint64(width.Milliseconds()))
	b = e.section(b, raw)
	if processed == nil {
		return append(b, 1)
	}
	b = append(b, 0)
	return e.section(b, processed)
}

// section appends the section of g's columns: a label set per label
// slice (the decoder merges equal ones), with its series.
func (e *encoder) section(b []byte, g *grouper) []byte {
	e.reset()
	cols := &g.cols
	e.remap = slices.Grow(e.remap[:0], len(cols.Series))[:len(cols.Series)]
	at := int32(0)
	for j, first := range g.setFirst {
		ls := cols.Series[first].Labels
		e.setBuf = binary.AppendUvarint(e.setBuf, uint64(len(ls)))
		for _, l := range ls {
			e.setBuf = binary.AppendUvarint(e.setBuf, uint64(e.intern(l.Name)))
			e.setBuf = binary.AppendUvarint(e.setBuf, uint64(e.intern(l.Value)))
		}
		e.setBuf = binary.AppendUvarint(e.setBuf, uint64(g.setSize[j]))
		for x := first; x >= 0; x = g.next[x] {
			e.setBuf = binary.AppendUvarint(e.setBuf, uint64(e.intern(cols.Series[x].Metric)))
			e.remap[x] = at
			at++
		}
	}
	b = binary.AppendUvarint(b, uint64(len(e.strIDs)))
	b = append(b, e.strs...)
	b = binary.AppendUvarint(b, uint64(len(g.setFirst)))
	b = append(b, e.setBuf...)
	b = binary.AppendUvarint(b, uint64(len(cols.Times)))
	prev := int64(0)
	for i, t := range cols.Times {
		id := uint64(e.remap[cols.IDs[i]]) << 1
		v := cols.Values[i]
		if iv, ok := wholeNumber(v); ok {
			b = binary.AppendUvarint(b, id|1)
			b = binary.AppendVarint(b, t-prev)
			b = binary.AppendVarint(b, iv)
		} else {
			b = binary.AppendUvarint(b, id)
			b = binary.AppendVarint(b, t-prev)
			b = wire.AppendFloat64(b, v)
		}
		prev = t
	}
	return b
}

// reset empties the section tables and drops their references to the
// last batch's memory.
func (e *encoder) reset() {
	if len(e.strIDs) > 1<<16 {
		e.strIDs = make(map[string]uint32)
	}
	clear(e.strIDs)
	e.strs, e.setBuf = e.strs[:0], e.setBuf[:0]
	clear(e.seen[:])
}

// intern returns the index of s in the section's string table.
func (e *encoder) intern(s string) uint32 {
	p := unsafe.StringData(s)
	seen := &e.seen[(uintptr(unsafe.Pointer(p))>>3^uintptr(len(s)))%uintptr(len(e.seen))]
	if seen.p == p && seen.n == len(s) && seen.valid {
		return seen.id
	}
	id, ok := e.strIDs[s]
	if !ok {
		id = uint32(len(e.strIDs))
		e.strIDs[s] = id
		e.strs = wire.AppendString(e.strs, s)
	}
	*seen = seenString{p: p, n: len(s), id: id, valid: true}
	return id
}
