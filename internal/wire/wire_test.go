package wire_test

import (
	"encoding/binary"
	"errors"
	"math"
	"testing"

	"github.com/google/go-cmp/cmp"
	"pgregory.net/rapid"

	"github.com/hourglass-io/hourglass/internal/wire"
	"github.com/hourglass-io/hourglass/tsstore"
)

func genLabels(t *rapid.T) tsstore.Labels {
	n := rapid.IntRange(0, 4).Draw(t, "labels")
	if n == 0 {
		return nil
	}
	ls := make(tsstore.Labels, n)
	for i := range ls {
		ls[i] = tsstore.Label{Name: rapid.String().Draw(t, "name"), Value: rapid.String().Draw(t, "value")}
	}
	return ls
}

func genFloat(t *rapid.T, label string) float64 {
	return rapid.OneOf(rapid.Float64(), rapid.Just(math.Inf(-1)), rapid.Just(math.Copysign(0, -1))).Draw(t, label)
}

func genCells(t *rapid.T) []tsstore.Cell {
	cells := make([]tsstore.Cell, rapid.IntRange(0, 5).Draw(t, "cells"))
	for i := range cells {
		cells[i] = tsstore.Cell{
			// A metric never starts with a zero byte (that marks a writer).
			Metric: rapid.StringMatching(`[a-z_:][a-z0-9_:]{0,8}`).Draw(t, "metric"),
			Labels: genLabels(t),
			Start:  rapid.Int64().Draw(t, "start"),
			Writer: rapid.StringMatching(`([a-zA-Z0-9_.:/-]{1,12})?`).Draw(t, "writer"),
			Seq:    rapid.Uint32().Draw(t, "seq"),
			Agg: tsstore.Agg{Count: rapid.Uint64().Draw(t, "count"), Sum: genFloat(t, "sum"),
				Min: genFloat(t, "min"), Max: genFloat(t, "max")},
		}
	}
	return cells
}

func genPoints(t *rapid.T) []tsstore.Point {
	ps := make([]tsstore.Point, rapid.IntRange(0, 5).Draw(t, "points"))
	for i := range ps {
		ps[i] = tsstore.Point{Metric: rapid.String().Draw(t, "metric"), Labels: genLabels(t),
			Timestamp: rapid.Int64().Draw(t, "ts"), Value: genFloat(t, "value")}
	}
	return ps
}

// The comparisons treat NaN as equal to NaN and -0 as distinct from 0 by
// comparing bits.
var floatBits = cmp.Comparer(func(a, b float64) bool { return math.Float64bits(a) == math.Float64bits(b) })

func TestRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		cells, points := genCells(t), genPoints(t)
		b := wire.AppendCells(nil, cells)
		if len(b) > wire.CellsSize(cells) {
			t.Fatalf("encoded %d bytes, CellsSize says at most %d", len(b), wire.CellsSize(cells))
		}
		b = wire.AppendPoints(b, points)
		b = wire.AppendString(b, "tail")
		r := &wire.Reader{B: b}
		if rapid.Bool().Draw(t, "intern") {
			r.Intern = map[string]string{}
		}
		gotCells, gotPoints, tail := r.Cells(), r.Points(), r.String()
		if err := r.End(); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(cells, gotCells, floatBits); diff != "" {
			t.Fatalf("cells (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(points, gotPoints, floatBits); diff != "" {
			t.Fatalf("points (-want +got):\n%s", diff)
		}
		if tail != "tail" {
			t.Fatalf("tail %q", tail)
		}
	})
}

// TestTruncated checks that every strict prefix of an encoding fails with
// ErrCorrupt (never a panic, never a silent success).
func TestTruncated(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		cells := genCells(t)
		b := wire.AppendCells(nil, cells)
		cut := rapid.IntRange(0, len(b)-1).Draw(t, "cut")
		r := &wire.Reader{B: b[:cut]}
		r.Cells()
		if err := r.End(); !errors.Is(err, wire.ErrCorrupt) {
			t.Fatalf("a prefix of %d of %d bytes decoded without error", cut, len(b))
		}
	})
}

// TestGarbage decodes random bytes: an error or a value, never a panic,
// and no allocation sized by a count beyond the input.
func TestGarbage(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		r := &wire.Reader{B: rapid.SliceOf(rapid.Byte()).Draw(t, "bytes")}
		r.Cells()
		r.Points()
		_ = r.End()
	})
}

func TestTrailingBytes(t *testing.T) {
	r := &wire.Reader{B: append(wire.AppendString(nil, "x"), 0)}
	if s := r.String(); s != "x" {
		t.Fatalf("String = %q", s)
	}
	if err := r.End(); !errors.Is(err, wire.ErrCorrupt) {
		t.Fatalf("End with a byte left = %v, want ErrCorrupt", err)
	}
}

// A cell encoded before cells had writers (no writer string) reads back as
// the legacy writer "": hint and redo logs written by older versions stay
// readable.
func TestCellWithoutWriterIsLegacy(t *testing.T) {
	old := wire.AppendString(nil, "revenue")
	old = wire.AppendLabels(old, tsstore.Labels{{Name: "merchant", Value: "m1"}})
	old = binary.AppendVarint(old, 60_000)
	old = binary.AppendUvarint(old, 7)
	old = binary.AppendUvarint(old, 2)
	old = wire.AppendFloat64(old, 3)
	old = wire.AppendFloat64(old, 1)
	old = wire.AppendFloat64(old, 2)
	r := &wire.Reader{B: old}
	got := r.Cell()
	want := tsstore.Cell{Metric: "revenue", Labels: tsstore.Labels{{Name: "merchant", Value: "m1"}}, Start: 60_000, Seq: 7, Agg: tsstore.Agg{Count: 2, Sum: 3, Min: 1, Max: 2}}
	if r.Err != nil || !cmp.Equal(got, want) {
		t.Fatalf("got %+v (err %v), want %+v", got, r.Err, want)
	}
	withWriter := want
	withWriter.Writer = "a1b2/3"
	if got := (&wire.Reader{B: wire.AppendCell(nil, &withWriter)}).Cell(); !cmp.Equal(got, withWriter) {
		t.Fatalf("round trip with a writer: got %+v", got)
	}
}
