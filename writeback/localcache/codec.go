package localcache

import (
	"errors"
	"math"

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
// reader looks each label set up once per record and makes it once per
// log:
//
//	uvarint n, then n strings (wire.AppendString): the section's metrics,
//	        label names and label values
//	uvarint n, then n label sets, each: uvarint label count, per label
//	        uvarint name and uvarint value (indexes of strings), then
//	        uvarint k and k metrics (indexes of strings): the set's
//	        series, numbered from 0 in the order they are listed
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
