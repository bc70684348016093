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
	key   []uint32

	raw, processed section
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

// corrupt fails r.
func corrupt(r *wire.Reader) {
	r.Err, r.B = wire.ErrCorrupt, nil
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
		labels := r.Uvarint()
		if labels > tsstore.MaxLabels {
			corrupt(r)
			return
		}
		d.key = append(d.key[:0], uint32(labels))
		for range 2 * labels {
			d.key = append(d.key, uint32(d.string(r)))
		}
		if r.Err != nil {
			return
		}
		h := hashKey(d.key)
		set := d.setIDs.find(d.key, h)
		if set == nil {
			set = d.setIDs.add(d.key, h, d.newSet())
		}
		for range r.Count() {
			m := d.string(r)
			if r.Err != nil {
				return
			}
			s.series = append(s.series, d.seriesOf(m, set))
		}
	}
	d.points(r, s)
}

// string reads a string index of the section and returns the string's id.
func (d *decoder) string(r *wire.Reader) int32 {
	i := r.Uvarint()
	if i >= uint64(len(d.local)) {
		corrupt(r)
		return 0
	}
	return d.local[i]
}

// newSet adds the label set of d.key.
func (d *decoder) newSet() int32 {
	var ls tsstore.Labels
	if n := d.key[0]; n > 0 {
		ls = make(tsstore.Labels, n)
		for i := range ls {
			ls[i] = tsstore.Label{Name: d.strs[d.key[1+2*i]], Value: d.strs[d.key[2+2*i]]}
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

// points reads the points of a section into s.
func (d *decoder) points(r *wire.Reader, s *section) {
	n := r.Count()
	if r.Err != nil {
		return
	}
	s.ids, s.times, s.values = slices.Grow(s.ids, n), slices.Grow(s.times, n), slices.Grow(s.values, n)
	nseries := uint64(len(s.series))
	b := r.B
	prev := int64(0)
	for range n {
		h, k := binary.Uvarint(b)
		if k <= 0 || h>>1 >= nseries {
			corrupt(r)
			return
		}
		b = b[k:]
		dt, k := binary.Varint(b)
		if k <= 0 {
			corrupt(r)
			return
		}
		b = b[k:]
		var v float64
		if h&1 == 1 {
			iv, k := binary.Varint(b)
			if k <= 0 {
				corrupt(r)
				return
			}
			b, v = b[k:], float64(iv)
		} else {
			if len(b) < 8 {
				corrupt(r)
				return
			}
			b, v = b[8:], math.Float64frombits(binary.LittleEndian.Uint64(b))
		}
		prev += dt
		s.ids = append(s.ids, int32(h>>1))
		s.times = append(s.times, prev)
		s.values = append(s.values, v)
	}
	r.B = b
}
