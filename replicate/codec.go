package replicate

import (
	"encoding/binary"
	"errors"
	"math"

	"github.com/hourglass-io/hourglass/tsstore"
)

// The payload of a hint record is a batch of cells:
//
//	uvarint n, then n times:
//	  string metric, uvarint labels, labels × (string name, string value),
//	  varint start, uvarint seq, uvarint count, 3 × float64 (sum, min, max)
//
// where string is a uvarint length and the bytes, and float64 is 8 bytes
// little endian.

var errCorrupt = errors.New("corrupt hint payload")

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// encodedSize returns an upper bound of the length of the encoding of
// cells (every uvarint counted at its largest for the value's type).
func encodedSize(cells []tsstore.Cell) int {
	n := binary.MaxVarintLen64
	for i := range cells {
		c := &cells[i]
		n += binary.MaxVarintLen64 + len(c.Metric) + binary.MaxVarintLen64
		for _, l := range c.Labels {
			n += 2*binary.MaxVarintLen64 + len(l.Name) + len(l.Value)
		}
		n += 3*binary.MaxVarintLen64 + 3*8
	}
	return n
}

// encodeCells appends the encoding of cells to b.
func encodeCells(b []byte, cells []tsstore.Cell) []byte {
	b = binary.AppendUvarint(b, uint64(len(cells)))
	for i := range cells {
		c := &cells[i]
		b = appendString(b, c.Metric)
		b = binary.AppendUvarint(b, uint64(len(c.Labels)))
		for _, l := range c.Labels {
			b = appendString(b, l.Name)
			b = appendString(b, l.Value)
		}
		b = binary.AppendVarint(b, c.Start)
		b = binary.AppendUvarint(b, uint64(c.Seq))
		b = binary.AppendUvarint(b, c.Count)
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(c.Sum))
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(c.Min))
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(c.Max))
	}
	return b
}

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errCorrupt
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = errCorrupt
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) string() string {
	n := d.uvarint()
	if d.err != nil || n > uint64(len(d.b)) {
		d.err = errCorrupt
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

func (d *decoder) float() float64 {
	if d.err != nil || len(d.b) < 8 {
		d.err = errCorrupt
		return 0
	}
	v := math.Float64frombits(binary.LittleEndian.Uint64(d.b))
	d.b = d.b[8:]
	return v
}

// decodeCells decodes a payload written by encodeCells.
func decodeCells(b []byte) ([]tsstore.Cell, error) {
	d := decoder{b: b}
	n := d.uvarint()
	if n > uint64(len(b)) { // every cell takes more than a byte
		return nil, errCorrupt
	}
	cells := make([]tsstore.Cell, 0, n)
	for i := uint64(0); i < n && d.err == nil; i++ {
		var c tsstore.Cell
		c.Metric = d.string()
		nl := d.uvarint()
		if nl > uint64(len(d.b)) {
			return nil, errCorrupt
		}
		if nl > 0 {
			c.Labels = make(tsstore.Labels, nl)
			for j := range c.Labels {
				c.Labels[j].Name = d.string()
				c.Labels[j].Value = d.string()
			}
		}
		c.Start = d.varint()
		seq := d.uvarint()
		if seq > math.MaxUint32 {
			return nil, errCorrupt
		}
		c.Seq = uint32(seq)
		c.Count = d.uvarint()
		c.Sum, c.Min, c.Max = d.float(), d.float(), d.float()
		cells = append(cells, c)
	}
	if d.err != nil {
		return nil, d.err
	}
	if len(d.b) != 0 {
		return nil, errCorrupt
	}
	return cells, nil
}
