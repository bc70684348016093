package localcache

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"
	"unsafe"

	"github.com/hourglass-io/hourglass/internal/wire"
	"github.com/hourglass-io/hourglass/tsstore"
)

// A batch record's payload (version 2):
//
//	byte    0 (a version 1 payload starts with its cell width, never 0)
//	uvarint version (2)
//	uvarint cell width (ms)
//	section: the raw points
//	byte    1 when the processed points are the raw ones, else 0 followed by
//	section: the processed points
//
// A section carries its own tables, so that a point is a few bytes and a
// reader makes each string and label set once:
//
//	uvarint n, then n strings (wire.AppendString): the section's metrics,
//	        label names and label values, each once
//	uvarint n, then n series: uvarint metric (a string's index), uvarint
//	        label count, then per label uvarint name and uvarint value
//	uvarint n, then n points: uvarint series<<1 | integer, varint
//	        timestamp minus the previous point's (the first: minus 0),
//	        then the value: a varint when integer is 1 (the value is a
//	        whole number within ±2^53, not -0), else float64
//
// Version 1 payloads (no leading 0):
//
//	uvarint cell width (ms)
//	points: the raw points (wire.AppendPoints)
//	byte    1 when the processed points are the raw ones, else 0 followed by
//	points: the processed points

const recordVersion = 2

// errCorrupt is wrapped by the error of a record that is torn or cannot be
// decoded (its framing here, its payload in package wire).
var errCorrupt = wire.ErrCorrupt

// errVersion is the error of a record of a version this code does not
// know: a newer one. It is not errCorrupt, so that replay fails rather than
// cutting such records off the end of the log.
var errVersion = errors.New("unknown batch record version")

// encoder writes batch records; it keeps its tables and buffers between
// batches. Not safe for concurrent use.
type encoder struct {
	strIDs map[string]uint32 // the section's strings, by content
	strs   []byte            // their encodings
	series []byte            // the section's series, encoded
	remap  []uint32          // the section's series of each series of the columns
	key    []byte
	// The labels of the series last encoded, by identity, and their
	// encoding (the fields of a line-protocol line share one label slice).
	lastLabels *tsstore.Label
	lastN      int
	lastEnc    []byte
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

// batch appends the payload of a batch record: raw, and processed unless
// it is nil (the processed points are the raw ones).
func (e *encoder) batch(b []byte, width time.Duration, raw, processed *tsstore.Columns) []byte {
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

// section appends the section of cols.
func (e *encoder) section(b []byte, cols *tsstore.Columns) []byte {
	e.reset()
	nseries := uint32(0)
	for i := range cols.Series {
		s := &cols.Series[i]
		e.key = binary.AppendUvarint(e.key[:0], uint64(e.intern(s.Metric)))
		if len(s.Labels) > 0 && &s.Labels[0] == e.lastLabels && len(s.Labels) == e.lastN {
			e.key = append(e.key, e.lastEnc...)
		} else {
			from := len(e.key)
			e.key = binary.AppendUvarint(e.key, uint64(len(s.Labels)))
			for _, l := range s.Labels {
				e.key = binary.AppendUvarint(e.key, uint64(e.intern(l.Name)))
				e.key = binary.AppendUvarint(e.key, uint64(e.intern(l.Value)))
			}
			if len(s.Labels) > 0 {
				e.lastLabels, e.lastN = &s.Labels[0], len(s.Labels)
				e.lastEnc = append(e.lastEnc[:0], e.key[from:]...)
			}
		}
		e.series = append(e.series, e.key...)
		e.remap = append(e.remap, nseries)
		nseries++
	}
	b = binary.AppendUvarint(b, uint64(len(e.strIDs)))
	b = append(b, e.strs...)
	b = binary.AppendUvarint(b, uint64(nseries))
	b = append(b, e.series...)
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
	e.strs, e.series, e.remap = e.strs[:0], e.series[:0], e.remap[:0]
	e.lastLabels, e.lastN = nil, 0
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

// wholeNumber returns v as an integer when the conversion is exact both
// ways (and v is not -0).
func wholeNumber(v float64) (int64, bool) {
	if v < -(1<<53) || v > 1<<53 {
		return 0, false
	}
	i := int64(v)
	if float64(i) != v || (i == 0 && math.Signbit(v)) {
		return 0, false
	}
	return i, true
}

// section is one section of a decoded record: its series (the decoder's
// ids of them) and its points, column by column. The decoder reuses it.
type section struct {
	series []int32 // the decoder's id of each of the section's series
	ids    []int32 // each point's series, an index into series
	times  []int64
	values []float64
}

func (s *section) reset() {
	s.series, s.ids, s.times, s.values = s.series[:0], s.ids[:0], s.times[:0], s.values[:0]
}

// len returns the number of points.
func (s *section) len() int { return len(s.times) }

// columns returns the section as columns, sharing its point columns:
// valid until the decoder reads the next record.
func (s *section) columns(d *decoder) *tsstore.Columns {
	cols := &tsstore.Columns{Series: make([]tsstore.SeriesLabels, len(s.series)), IDs: s.ids, Times: s.times, Values: s.values}
	for i, g := range s.series {
		cols.Series[i] = d.series[g]
	}
	return cols
}

// decoder decodes the records of one log file. It makes each string,
// label set and series the records repeat once, and gives each series an
// id (an index into series) for the log. Not safe for concurrent use.
type decoder struct {
	strIDs map[string]int32 // by content
	strs   []string
	// seriesIDs finds a series by its key: its metric and label count,
	// names and values as ids of strs (uvarints); sets finds a label set
	// by the same key without the metric.
	seriesIDs map[string]int32
	sets      map[string]tsstore.Labels
	series    []tsstore.SeriesLabels
	// epoch counts the times the tables started over: ids of an earlier
	// epoch name other series.
	epoch int

	// Version 1 records: points share their strings and label sets
	// through shared, and are grouped by identity.
	shared *wire.Shared
	v1IDs  map[identity]int32
	v1Pts  []tsstore.Point
	v1Loc  map[int32]int32

	local []int32 // the record's string ids
	key   []byte

	raw, processed section
	width          time.Duration
	same           bool // the processed points are the raw ones
}

func newDecoder() *decoder {
	d := &decoder{}
	d.startOver()
	return d
}

// maxShared bounds the decoder's tables: past it, they start over (what
// was returned stays valid).
const maxShared = 1 << 20

func (d *decoder) startOver() {
	d.strIDs, d.strs = make(map[string]int32), d.strs[:0]
	d.seriesIDs, d.sets = make(map[string]int32), make(map[string]tsstore.Labels)
	clear(d.series)
	d.series = d.series[:0]
	d.shared, d.v1IDs, d.v1Loc = wire.NewShared(), make(map[identity]int32), make(map[int32]int32)
	d.epoch++
}

// record decodes a record into d.raw, and into d.processed too with
// processed (else the processed section is not read).
func (d *decoder) record(payload []byte, processed bool) error {
	if len(d.strs) >= maxShared || len(d.series) >= maxShared {
		d.startOver()
	}
	d.raw.reset()
	d.processed.reset()
	r := &wire.Reader{B: payload}
	v1 := len(payload) > 0 && payload[0] != 0
	if !v1 {
		r.Byte()
		if v := r.Uvarint(); v != recordVersion && r.Err == nil {
			return fmt.Errorf("decode batch: %w %d", errVersion, v)
		}
	}
	d.width = time.Duration(r.Uvarint()) * time.Millisecond
	if d.width <= 0 {
		r.Err = wire.ErrCorrupt
	}
	sec := d.sectionV2
	if v1 {
		sec = d.sectionV1
	}
	sec(r, &d.raw)
	if processed {
		d.same = r.Byte() == 1
		if !d.same {
			sec(r, &d.processed)
		}
		r.End()
	}
	if r.Err != nil {
		return fmt.Errorf("decode batch: %w", r.Err)
	}
	return nil
}

// processedSection returns the processed points of the record last read.
func (d *decoder) processedSection() *section {
	if d.same {
		return &d.raw
	}
	return &d.processed
}

// sectionV2 reads a version 2 section into s.
func (d *decoder) sectionV2(r *wire.Reader, s *section) {
	n := r.Count()
	d.local = d.local[:0]
	for range n {
		raw := r.Bytes(r.Uvarint())
		if r.Err != nil {
			return
		}
		id, ok := d.strIDs[string(raw)]
		if !ok {
			id = int32(len(d.strs))
			v := string(raw)
			d.strs = append(d.strs, v)
			d.strIDs[v] = id
		}
		d.local = append(d.local, id)
	}
	n = r.Count()
	for range n {
		d.key = d.key[:0]
		d.key = d.appendString(d.key, r)
		labels := r.Uvarint()
		if labels > tsstore.MaxLabels {
			r.Err = wire.ErrCorrupt
		}
		d.key = binary.AppendUvarint(d.key, labels)
		for range 2 * labels {
			d.key = d.appendString(d.key, r)
		}
		if r.Err != nil {
			return
		}
		id, ok := d.seriesIDs[string(d.key)]
		if !ok {
			id = d.newSeries()
		}
		s.series = append(s.series, id)
	}
	n = r.Count()
	nseries := uint64(len(s.series))
	prev := int64(0)
	for range n {
		h := r.Uvarint()
		t := prev + r.Varint()
		var v float64
		if h&1 == 1 {
			v = float64(r.Varint())
		} else {
			v = r.Float64()
		}
		if h>>1 >= nseries {
			r.Err = wire.ErrCorrupt
		}
		if r.Err != nil {
			return
		}
		s.ids = append(s.ids, int32(h>>1))
		s.times = append(s.times, t)
		s.values = append(s.values, v)
		prev = t
	}
}

// appendString reads a string index of the section and appends the
// string's id to key.
func (d *decoder) appendString(key []byte, r *wire.Reader) []byte {
	i := r.Uvarint()
	if i >= uint64(len(d.local)) {
		r.Err = wire.ErrCorrupt
		return key
	}
	return binary.AppendUvarint(key, uint64(d.local[i]))
}

// newSeries adds the series of d.key to the tables.
func (d *decoder) newSeries() int32 {
	k := wire.Reader{B: d.key}
	s := tsstore.SeriesLabels{Metric: d.strs[k.Uvarint()]}
	set := k.B
	ls, ok := d.sets[string(set)]
	if !ok {
		if n := k.Uvarint(); n > 0 {
			ls = make(tsstore.Labels, n)
			for i := range ls {
				ls[i] = tsstore.Label{Name: d.strs[k.Uvarint()], Value: d.strs[k.Uvarint()]}
			}
		}
		d.sets[string(set)] = ls
	}
	s.Labels = ls
	id := int32(len(d.series))
	d.series = append(d.series, s)
	d.seriesIDs[string(d.key)] = id
	return id
}
