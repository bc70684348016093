package replicate

import (
	"github.com/hourglass-io/hourglass/internal/wire"
	"github.com/hourglass-io/hourglass/tsstore"
)

// The payload of a hint record is a batch of cells in the encoding of
// wire.AppendCells:
//
//	uvarint n, then n times:
//	  string metric, uvarint labels, labels × (string name, string value),
//	  varint start, uvarint seq, uvarint count, 3 × float64 (sum, min, max)
//
// where string is a uvarint length and the bytes, and float64 is 8 bytes
// little endian.

// encodedSize returns an upper bound of the length of the encoding of
// cells.
func encodedSize(cells []tsstore.Cell) int { return wire.CellsSize(cells) }

// encodeCells appends the encoding of cells to b.
func encodeCells(b []byte, cells []tsstore.Cell) []byte { return wire.AppendCells(b, cells) }

// decodeCells decodes a payload written by encodeCells.
func decodeCells(b []byte) ([]tsstore.Cell, error) {
	r := &wire.Reader{B: b}
	cells := r.Cells()
	if err := r.End(); err != nil {
		return nil, err
	}
	return cells, nil
}
