package localcache

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/hourglass-io/hourglass/internal/wire"
	"github.com/hourglass-io/hourglass/tsstore"
)

// decoder decodes the records of one log file. It makes each string,
// label set and series the records repeat once, and gives each series an
// id (an index into series) for the log. Not safe for concurrent use.
type decoder struct {
	strIDs map[string]int32 // by content
	strs   []string
	// setIDs finds a label set by its key: its label count and the ids
	// of its names and values, with the set's first series.
	setIDs setTable
	sets   []tsstore.Labels
	series []tsstore.SeriesLabels
	// more finds a series by metric and label set when its set's slot
	// does not hold it.
	more map[[2]int32]int32
	// epoch counts the times the tables started over: ids of an earlier
	// epoch name other series.
	epoch int

	// Version 1 records: points share their strings and label sets
	// through shared, and are grouped by identity.
	shared *wire.Shared
	v1IDs  map[identity]int32
	v1Pts  []tsstore.Point
	v1Loc  map[int32]int32

	local []int32 // the section's string ids
	// The label sets of the section being read: their keys one after
	// another, their metrics (string ids) one after another, and where
	// each set's key and metrics end, and the hash of each key.
	key     []uint32
	metrics []int32
	setRefs []setRef
	hashes  []uint64

	raw, processed section
	pts            pointReader // the raw points left to read (rawRecord), in the record's payload: read them before the next record
	width          time.Duration
	same           bool // the processed points are the raw ones
}

// maxShared bounds the decoder's tables: past it, they start over (what
// was returned stays valid).
const maxShared = 1 << 20

func newDecoder() *decoder {
	d := &decoder{}
	d.startOver()
	return d
}

func (d *decoder) startOver() {
	d.strIDs, d.strs = make(map[string]int32), d.strs[:0]
	d.setIDs, d.sets = setTable{}, d.sets[:0]
	clear(d.series)
	d.series, d.more = d.series[:0], make(map[[2]int32]int32)
	d.shared, d.v1IDs, d.v1Loc = wire.NewShared(), make(map[identity]int32), make(map[int32]int32)
	d.epoch++
}

// record decodes a record into d.raw, and into d.processed too with
// processed (else the processed section is not read).
func (d *decoder) record(payload []byte, processed bool) error {
	r, v1, err := d.start(payload)
	if err != nil {
		return err
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
	return decodeErr(r.Err)
}

// rawRecord decodes a record's raw section for a reader that takes the
// points as they are decoded: its series into d.raw, and its points into
// d.raw too for a version 1 record, but for a version 2 record into d.pts,
// to be read from there (d.raw then has none). The processed section is
// not read.
func (d *decoder) rawRecord(payload []byte) error {
	d.pts = pointReader{}
	r, v1, err := d.start(payload)
	if err != nil {
		return err
	}
	if v1 {
		d.sectionV1(r, &d.raw)
	} else {
		d.tablesV2(r, &d.raw)
		d.pts = d.pointsOf(r, &d.raw)
	}
	return decodeErr(r.Err)
}

// start resets the sections and reads the header of a record: it returns
// the reader of the rest and whether the record is of version 1.
func (d *decoder) start(payload []byte) (*wire.Reader, bool, error) {
	if len(d.strs) >= maxShared || len(d.series) >= maxShared || len(d.sets) >= maxShared {
		d.startOver()
	}
	d.raw.reset()
	d.processed.reset()
	r := &wire.Reader{B: payload}
	v1 := len(payload) > 0 && payload[0] != 0
	if !v1 {
		r.Byte()
		if v := r.Uvarint(); v != recordVersion && r.Err == nil {
			return nil, false, fmt.Errorf("decode batch: %w %d", errVersion, v)
		}
	}
	d.width = time.Duration(r.Uvarint()) * time.Millisecond
	if d.width <= 0 {
		r.Err = wire.ErrCorrupt
	}
	return r, v1, nil
}

// decodeErr returns the error of a record whose decoding failed with err,
// or nil.
func decodeErr(err error) error {
	if err != nil {
		return fmt.Errorf("decode batch: %w", err)
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

// corrupt fails r.
func corrupt(r *wire.Reader) {
	r.Err, r.B = wire.ErrCorrupt, nil
}

// sectionV2 reads a version 2 section into s.
func (d *decoder) sectionV2(r *wire.Reader, s *section) {
	d.tablesV2(r, s)
	d.points(r, s)
}

// tablesV2 reads the tables of a version 2 section, up to its points: its
// series into s.
func (d *decoder) tablesV2(r *wire.Reader, s *section) {
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
	if r.Err != nil {
		return
	}
	// All the sets' keys and series first, then the lookups: each is
	// likely a cache miss in the table of a log's sets, and with nothing
	// to decode between them the processor overlaps them.
	d.key, d.metrics, d.setRefs, d.hashes = d.key[:0], d.metrics[:0], d.setRefs[:0], d.hashes[:0]
	b, local := r.B, d.local
	for range n {
		labels, k := binary.Uvarint(b)
		if k <= 0 || labels > tsstore.MaxLabels {
			corrupt(r)
			return
		}
		b = b[k:]
		// The key is hashed as it is read, the hash's multiplications
		// overlapping the reading of the next varints.
		h := hashStep(hashStart(1+2*int(labels)), uint32(labels))
		d.key = append(d.key, uint32(labels))
		for range 2 * labels {
			i, k := uvarint2(b)
			if k == 0 {
				i, k = binary.Uvarint(b)
			}
			if k <= 0 || i >= uint64(len(local)) {
				corrupt(r)
				return
			}
			b = b[k:]
			x := uint32(local[i])
			d.key = append(d.key, x)
			h = hashStep(h, x)
		}
		series, k := binary.Uvarint(b)
		if k <= 0 || series > uint64(len(b)-k) {
			corrupt(r)
			return
		}
		b = b[k:]
		for range series {
			i, k := uvarint2(b)
			if k == 0 {
				i, k = binary.Uvarint(b)
			}
			if k <= 0 || i >= uint64(len(local)) {
				corrupt(r)
				return
			}
			b = b[k:]
			d.metrics = append(d.metrics, local[i])
		}
		d.setRefs = append(d.setRefs, setRef{key: int32(len(d.key)), metrics: int32(len(d.metrics))})
		d.hashes = append(d.hashes, h)
	}
	r.B = b
	d.setIDs.warm(d.hashes)
	var key, metric int32
	for j, ref := range d.setRefs {
		k, h := d.key[key:ref.key], d.hashes[j]
		set := d.setIDs.find(k, h)
		if set == nil {
			set = d.setIDs.add(k, h, d.newSet(k))
		}
		for _, m := range d.metrics[metric:ref.metrics] {
			s.series = append(s.series, d.seriesOf(m, set))
		}
		key, metric = ref.key, ref.metrics
	}
}

// setRef is a label set of a section being read: the ends of its key in
// decoder.key and of its metrics in decoder.metrics.
type setRef struct{ key, metrics int32 }

// newSet adds the label set of key.
func (d *decoder) newSet(key []uint32) int32 {
	var ls tsstore.Labels
	if n := key[0]; n > 0 {
		ls = make(tsstore.Labels, n)
		for i := range ls {
			ls[i] = tsstore.Label{Name: d.strs[key[1+2*i]], Value: d.strs[key[2+2*i]]}
		}
	}
	d.sets = append(d.sets, ls)
	return int32(len(d.sets) - 1)
}

// seriesOf returns the series of metric m and the label set of slot,
// adding it if it is new.
func (d *decoder) seriesOf(m int32, slot *setSlot) int32 {
	for _, f := range slot.first[:min(slot.n, slotSeries)] {
		if f[0] == m {
			return f[1]
		}
	}
	if slot.n > slotSeries {
		if id, ok := d.more[[2]int32{m, slot.id}]; ok {
			return id
		}
	}
	id := int32(len(d.series))
	d.series = append(d.series, tsstore.SeriesLabels{Metric: d.strs[m], Labels: d.sets[slot.id]})
	if slot.n < slotSeries {
		slot.first[slot.n] = [2]int32{m, id}
	} else {
		d.more[[2]int32{m, slot.id}] = id
	}
	slot.n++
	return id
}

// points reads the points of a version 2 section into s.
func (d *decoder) points(r *wire.Reader, s *section) {
	p := d.pointsOf(r, s)
	if r.Err != nil {
		return
	}
	n := p.left
	s.ids, s.times, s.values = slices.Grow(s.ids, n)[:n], slices.Grow(s.times, n)[:n], slices.Grow(s.values, n)[:n]
	if !p.read(s.ids, s.times, s.values) {
		corrupt(r)
		return
	}
	r.B = p.b
}

// pointsOf returns the reader of the points of a version 2 section whose
// tables were read into s, and skips r past them (a failed count fails r).
func (d *decoder) pointsOf(r *wire.Reader, s *section) pointReader {
	n := r.Count()
	if r.Err != nil {
		return pointReader{}
	}
	p := pointReader{b: r.B, left: n, series: uint64(len(s.series))}
	r.B = nil // the points are p's
	return p
}

// pointReader reads the points of a version 2 section, run by run, into
// point columns (see codec.go for their encoding).
type pointReader struct {
	b      []byte
	left   int    // the points not yet read
	series uint64 // the number of the section's series
	prev   int64  // the timestamp of the point last read
}

// read decodes the next len(ids) points into ids (each an index into the
// section's series), times and values, which must be as long as ids. It
// reports false for a point that cannot be decoded (then the columns hold
// garbage) or when fewer points are left.
func (p *pointReader) read(ids []int32, times []int64, values []float64) bool {
	if len(ids) > p.left {
		return false
	}
	times, values = times[:len(ids)], values[:len(ids)]
	b, prev := p.b, p.prev
	for i := range ids {
		h, k := uvarint2(b)
		if k == 0 {
			h, k = binary.Uvarint(b)
		}
		if k <= 0 || h>>1 >= p.series {
			return false
		}
		b = b[k:]
		// Of 3 bytes or more when a record's times spread over more than
		// some 8 s (as issue 19's workload's, over 30 minutes): uvarint2
		// would leave it to binary.Uvarint, which is inlined
		// (binary.Varint is not).
		dt, k := binary.Uvarint(b)
		if k <= 0 {
			return false
		}
		b = b[k:]
		var v float64
		if h&1 == 1 {
			iv, k := uvarint2(b)
			if k == 0 {
				iv, k = binary.Uvarint(b)
			}
			if k <= 0 {
				return false
			}
			b, v = b[k:], float64(unzigzag(iv))
		} else {
			if len(b) < 8 {
				return false
			}
			b, v = b[8:], math.Float64frombits(binary.LittleEndian.Uint64(b))
		}
		prev += unzigzag(dt)
		ids[i], times[i], values[i] = int32(h>>1), prev, v
	}
	p.b, p.prev, p.left = b, prev, p.left-len(ids)
	return true
}

// unzigzag returns the signed integer of a varint's unsigned one (see
// binary.Varint).
func unzigzag(ux uint64) int64 {
	x := int64(ux >> 1)
	if ux&1 != 0 {
		x = ^x
	}
	return x
}
