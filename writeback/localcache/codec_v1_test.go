package localcache

import (
	"encoding/binary"
	"time"

	"github.com/hourglass-io/hourglass/internal/wire"
	"github.com/hourglass-io/hourglass/tsstore"
)

// encodeV1 is the encoder of version 1 batch records (before records
// carried a series table), kept to test that such records still replay
// and read back: a payload, processed nil when the processed points are
// the raw ones.
func encodeV1(b []byte, width time.Duration, raw, processed []tsstore.Point) []byte {
	b = binary.AppendUvarint(b, uint64(width.Milliseconds()))
	b = wire.AppendPoints(b, raw)
	if processed == nil {
		return append(b, 1)
	}
	b = append(b, 0)
	return wire.AppendPoints(b, processed)
}
