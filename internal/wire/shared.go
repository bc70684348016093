package wire

import (
	"bytes"

	"github.com/hourglass-io/hourglass/tsstore"
)

// Shared shares what decoded points repeat: a label set read again (the
// same encoded bytes) is the same tsstore.Labels, made once, and so is a
// metric name. A log's points repeat a few series many times, and the
// points of one line or event follow each other, so most points are
// decoded without allocating and many without a map lookup. Not safe for
// concurrent use.
type Shared struct {
	sets    map[string]tsstore.Labels // by their encoding
	metrics map[string]string
	// The last label set and the last two metrics, by their encoding (a
	// copy: the input's memory may be reused).
	lastSet  []byte
	last     tsstore.Labels
	lastName [2][]byte
	name     [2]string
}

// NewShared returns an empty Shared.
func NewShared() *Shared {
	return &Shared{sets: make(map[string]tsstore.Labels), metrics: make(map[string]string)}
}

// maxShared bounds the maps of a Shared: past it, they start over (what
// was returned stays valid).
const maxShared = 1 << 20

// SharedLabels reads labels written by AppendLabels, sharing them through
// s; nil for none. The labels returned must not be modified.
func (r *Reader) SharedLabels(s *Shared) tsstore.Labels {
	start := r.B
	n := r.Uvarint()
	if n > tsstore.MaxLabels {
		r.fail()
	}
	if r.Err != nil || n == 0 {
		return nil
	}
	for range 2 * n {
		r.Bytes(r.Uvarint())
	}
	if r.Err != nil {
		return nil
	}
	raw := start[:len(start)-len(r.B)]
	if bytes.Equal(raw, s.lastSet) {
		return s.last
	}
	ls, ok := s.sets[string(raw)]
	if !ok {
		again := Reader{B: raw}
		ls = again.Labels()
		if again.Err != nil {
			r.fail()
			return nil
		}
		for i := range ls {
			ls[i].Name, ls[i].Value = s.metric(ls[i].Name), s.metric(ls[i].Value)
		}
		if len(s.sets) >= maxShared {
			clear(s.sets)
		}
		s.sets[string(raw)] = ls
	}
	s.lastSet, s.last = append(s.lastSet[:0], raw...), ls
	return ls
}

// metric returns the shared copy of a short string.
func (s *Shared) metric(v string) string {
	if len(v) > 64 {
		return v
	}
	if m, ok := s.metrics[v]; ok {
		return m
	}
	if len(s.metrics) >= maxShared {
		clear(s.metrics)
	}
	s.metrics[v] = v
	return v
}

// sharedString reads a string written by AppendString, shared through s.
func (r *Reader) sharedString(s *Shared) string {
	raw := r.Bytes(r.Uvarint())
	if r.Err != nil {
		return ""
	}
	for i := range s.lastName {
		if bytes.Equal(raw, s.lastName[i]) {
			return s.name[i]
		}
	}
	v, ok := s.metrics[string(raw)]
	if !ok {
		v = s.metric(string(raw))
	}
	buf := s.lastName[1][:0] // the older copy's memory, reused
	s.lastName[1], s.name[1] = s.lastName[0], s.name[0]
	s.lastName[0], s.name[0] = append(buf, raw...), v
	return v
}

// SharedPoint reads a point written by AppendPoint, sharing its metric and
// labels through s.
func (r *Reader) SharedPoint(s *Shared) tsstore.Point {
	var p tsstore.Point
	p.Metric = r.sharedString(s)
	p.Labels = r.SharedLabels(s)
	p.Timestamp = r.Varint()
	p.Value = r.Float64()
	return p
}
