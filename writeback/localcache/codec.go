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

func decodeBatch(payload []byte) (*batchRecord, error) {
	// Interned strings: metric and label names repeat within a record.
	r := &wire.Reader{B: payload, Intern: make(map[string]string)}
	b := &batchRecord{width: time.Duration(r.Uvarint()) * time.Millisecond}
	b.raw = r.Points()
	b.same = r.Byte() == 1
	if b.same {
		b.processed = b.raw
	} else {
		b.processed = r.Points()
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
