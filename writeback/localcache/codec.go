package localcache

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/hourglass-io/hourglass/internal/wire"
	"github.com/hourglass-io/hourglass/tsstore"
)

// A batch record's payload:
//
//	uvarint cell width (ms)
//	points: the raw points (wire.AppendPoints)
//	byte    1 when the processed points are the raw ones, else 0 followed by
//	points: the processed points

// errCorrupt is wrapped by the error of a record that is torn or cannot be
// decoded (its framing here, its payload in package wire).
var errCorrupt = wire.ErrCorrupt

func encodeBatch(b []byte, batch *batchRecord) []byte {
	b = binary.AppendUvarint(b, uint64(batch.width.Milliseconds()))
	b = wire.AppendPoints(b, batch.raw)
	if batch.same {
		return append(b, 1)
	}
	b = append(b, 0)
	return wire.AppendPoints(b, batch.processed)
}

type batchRecord struct {
	width     time.Duration
	raw       []tsstore.Point
	processed []tsstore.Point
	same      bool
}

// decoder decodes the records of one log file, sharing the strings and
// label sets that repeat across them. Not safe for concurrent use.
type decoder struct {
	shared *wire.Shared
}

func newDecoder() *decoder { return &decoder{shared: wire.NewShared()} }

// reader returns a Reader of payload.
func (d *decoder) reader(payload []byte) *wire.Reader { return &wire.Reader{B: payload} }

// points reads n points into dst, sharing their metrics and labels.
func (d *decoder) points(dst []tsstore.Point, r *wire.Reader, n int) []tsstore.Point {
	for i := 0; i < n && r.Err == nil; i++ {
		dst = append(dst, r.SharedPoint(d.shared))
	}
	return dst
}

// batch decodes a whole record.
func (d *decoder) batch(payload []byte) (*batchRecord, error) {
	r := d.reader(payload)
	b := &batchRecord{width: time.Duration(r.Uvarint()) * time.Millisecond}
	n := r.Count()
	b.raw = d.points(make([]tsstore.Point, 0, n), r, n)
	b.same = r.Byte() == 1
	if b.same {
		b.processed = b.raw
	} else {
		n := r.Count()
		b.processed = d.points(make([]tsstore.Point, 0, n), r, n)
	}
	err := r.End()
	if err == nil && b.width <= 0 {
		err = wire.ErrCorrupt
	}
	if err != nil {
		return nil, fmt.Errorf("decode batch: %w", err)
	}
	return b, nil
}

// raw calls fn with the raw points of a record in chunks that fill chunk
// up to max points (chunk keeps what is left for the next record), never
// with a point that failed to decode. With fresh, chunk is a new slice
// after each call of fn (which may keep the one it got).
func (d *decoder) raw(payload []byte, chunk *[]tsstore.Point, max int, fresh bool, fn func([]tsstore.Point) error) error {
	r := d.reader(payload)
	if r.Uvarint() == 0 {
		r.Err = wire.ErrCorrupt
	}
	for n := r.Count(); n > 0 && r.Err == nil; {
		if *chunk == nil {
			*chunk = make([]tsstore.Point, 0, max)
		}
		k := min(n, max-len(*chunk))
		*chunk = d.points(*chunk, r, k)
		n -= k
		if len(*chunk) == max && r.Err == nil {
			if err := fn(*chunk); err != nil {
				return err
			}
			if fresh {
				*chunk = nil
			} else {
				*chunk = (*chunk)[:0]
			}
		}
	}
	if r.Err != nil {
		return fmt.Errorf("decode batch: %w", r.Err)
	}
	return nil
}
