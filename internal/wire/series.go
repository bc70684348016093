package wire

import (
	"encoding/binary"
	"math"

	"github.com/hourglass-io/hourglass/tsstore"
)

// The encodings of points and cells:
//
//	labels: uvarint n, then n times (string name, string value)
//	point:  string metric, labels, varint timestamp, float64 value
//	cell:   [string "\x00"+writer], string metric, labels, varint start,
//	        uvarint seq, uvarint count, float64 sum, float64 min,
//	        float64 max
//
// A cell's writer is written only when it is not "" (the legacy writer),
// as a string starting with a zero byte, which no metric name does: logs
// written before cells had writers read back unchanged, as writer "".
//	cells:  uvarint n, then n cells (points: the same with points)

// AppendLabels appends ls.
func AppendLabels(b []byte, ls tsstore.Labels) []byte {
	b = binary.AppendUvarint(b, uint64(len(ls)))
	for _, l := range ls {
		b = AppendString(b, l.Name)
		b = AppendString(b, l.Value)
	}
	return b
}

// Labels reads labels written by AppendLabels; nil for none.
func (r *Reader) Labels() tsstore.Labels {
	n := r.Uvarint()
	if n > tsstore.MaxLabels {
		r.fail()
	}
	if r.Err != nil || n == 0 {
		return nil
	}
	ls := make(tsstore.Labels, n)
	for i := range ls {
		ls[i].Name = r.String()
		ls[i].Value = r.String()
	}
	return ls
}

// AppendPoint appends p.
func AppendPoint(b []byte, p *tsstore.Point) []byte {
	b = AppendString(b, p.Metric)
	b = AppendLabels(b, p.Labels)
	b = binary.AppendVarint(b, p.Timestamp)
	return AppendFloat64(b, p.Value)
}

// Point reads a point written by AppendPoint.
func (r *Reader) Point() tsstore.Point {
	var p tsstore.Point
	p.Metric = r.String()
	p.Labels = r.Labels()
	p.Timestamp = r.Varint()
	p.Value = r.Float64()
	return p
}

// AppendPoints appends the count of ps and ps.
func AppendPoints(b []byte, ps []tsstore.Point) []byte {
	b = binary.AppendUvarint(b, uint64(len(ps)))
	for i := range ps {
		b = AppendPoint(b, &ps[i])
	}
	return b
}

// Points reads points written by AppendPoints.
func (r *Reader) Points() []tsstore.Point {
	n := r.Count()
	if r.Err != nil {
		return nil
	}
	ps := make([]tsstore.Point, 0, n)
	for i := 0; i < n && r.Err == nil; i++ {
		ps = append(ps, r.Point())
	}
	return ps
}

// AppendCell appends c.
func AppendCell(b []byte, c *tsstore.Cell) []byte {
	if c.Writer != "" {
		b = binary.AppendUvarint(b, uint64(1+len(c.Writer)))
		b = append(b, 0)
		b = append(b, c.Writer...)
	}
	b = AppendString(b, c.Metric)
	b = AppendLabels(b, c.Labels)
	b = binary.AppendVarint(b, c.Start)
	b = binary.AppendUvarint(b, uint64(c.Seq))
	b = binary.AppendUvarint(b, c.Count)
	b = AppendFloat64(b, c.Sum)
	b = AppendFloat64(b, c.Min)
	return AppendFloat64(b, c.Max)
}

// Cell reads a cell written by AppendCell.
func (r *Reader) Cell() tsstore.Cell {
	var c tsstore.Cell
	c.Metric = r.String()
	if len(c.Metric) > 0 && c.Metric[0] == 0 {
		c.Writer = c.Metric[1:]
		c.Metric = r.String()
	}
	c.Labels = r.Labels()
	c.Start = r.Varint()
	seq := r.Uvarint()
	if seq > math.MaxUint32 {
		r.fail()
	}
	c.Seq = uint32(seq)
	c.Count = r.Uvarint()
	c.Sum, c.Min, c.Max = r.Float64(), r.Float64(), r.Float64()
	return c
}

// AppendCells appends the count of cells and cells.
func AppendCells(b []byte, cells []tsstore.Cell) []byte {
	b = binary.AppendUvarint(b, uint64(len(cells)))
	for i := range cells {
		b = AppendCell(b, &cells[i])
	}
	return b
}

// Cells reads cells written by AppendCells.
func (r *Reader) Cells() []tsstore.Cell {
	n := r.Count()
	if r.Err != nil {
		return nil
	}
	cells := make([]tsstore.Cell, 0, n)
	for i := 0; i < n && r.Err == nil; i++ {
		cells = append(cells, r.Cell())
	}
	return cells
}

// CellsSize returns an upper bound of the length of AppendCells(nil,
// cells), to size a buffer once.
func CellsSize(cells []tsstore.Cell) int {
	n := binary.MaxVarintLen64
	for i := range cells {
		c := &cells[i]
		n += 2*binary.MaxVarintLen64 + 1 + len(c.Writer) + len(c.Metric) + binary.MaxVarintLen64
		for _, l := range c.Labels {
			n += 2*binary.MaxVarintLen64 + len(l.Name) + len(l.Value)
		}
		n += 3*binary.MaxVarintLen64 + 3*8
	}
	return n
}
