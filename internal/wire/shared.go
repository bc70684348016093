package wire

import "github.com/hourglass-io/hourglass/tsstore"

// LabelSets shares decoded label sets: a set read again (the same encoded
// bytes) is the same tsstore.Labels, made once. A log's points repeat a
// few series many times, so most points are decoded without allocating.
// The map is keyed by the encoded bytes. Not safe for concurrent use.
type LabelSets map[string]tsstore.Labels

// maxLabelSets bounds a LabelSets: past it, it starts over (sets already
// returned stay valid).
const maxLabelSets = 1 << 20

// SharedLabels reads labels written by AppendLabels, sharing them through
// sets; nil for none. The labels returned must not be modified.
func (r *Reader) SharedLabels(sets LabelSets) tsstore.Labels {
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
	if ls, ok := sets[string(raw)]; ok {
		return ls
	}
	again := Reader{B: raw, Intern: r.Intern}
	ls := again.Labels()
	if again.Err != nil {
		r.fail()
		return nil
	}
	if len(sets) >= maxLabelSets {
		clear(sets)
	}
	sets[string(raw)] = ls
	return ls
}

// SharedPoint reads a point written by AppendPoint, sharing its labels
// through sets.
func (r *Reader) SharedPoint(sets LabelSets) tsstore.Point {
	var p tsstore.Point
	p.Metric = r.String()
	p.Labels = r.SharedLabels(sets)
	p.Timestamp = r.Varint()
	p.Value = r.Float64()
	return p
}
