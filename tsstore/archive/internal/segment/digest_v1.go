package segment

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"hash"
	"math"
	"math/bits"
	"sync"
	"unsafe"

	"github.com/hourglass-io/hourglass/tsstore"
)

// digestHeader starts the canonical form of a segment's points in
// version 1.
const digestHeader = "hourglass-points-v1\n"

// appendSeries appends the canonical form of a series to b.
func appendSeries(b []byte, metric string, ls tsstore.Labels) []byte {
	str := func(s string) {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	str(metric)
	b = binary.AppendUvarint(b, uint64(len(ls)))
	for _, l := range ls {
		str(l.Name)
		str(l.Value)
	}
	return b
}

// digestV1 returns the content digest of version 1 of the batch's points:
// the hex SHA-256 of digestHeader and of each point's canonical form, its
// time, its series' canonical form (appendSeries) and its value, in the
// order of Compare. The series' forms are made once, into slots of a fixed
// size when the longest fits one, so that a point's is one copy of a known
// size rather than a call to memmove.
func (b *Batch) digestV1() string {
	longest := 0
	for i := range b.tab {
		longest = max(longest, seriesSize(&b.tab[i]))
	}
	h := sha256.New()
	switch {
	case longest <= 32:
		digestSlots[[32]byte](h, b)
	case longest <= 64:
		digestSlots[[64]byte](h, b)
	case longest <= 128:
		digestSlots[[128]byte](h, b)
	default:
		digestPacked(h, b, longest)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// seriesSize returns the size of the canonical form of s (appendSeries).
func seriesSize(s *tsstore.SeriesLabels) int {
	str := func(s string) int { return uvarintSize(len(s)) + len(s) }
	n := str(s.Metric) + uvarintSize(len(s.Labels))
	for _, l := range s.Labels {
		n += str(l.Name) + str(l.Value)
	}
	return n
}

func uvarintSize(n int) int { return (bits.Len64(uint64(n)|1) + 6) / 7 }

// digestBufSize is the size of the buffer of canonical forms of points
// that digestV1 hashes at a time.
const digestBufSize = 64 << 10

// digestScratch is the memory of a digestSlots, reused by the next.
type digestScratch struct {
	slots []byte // the slots of the series' forms
	lens  []uint8
	buf   []byte
}

var digestPool = sync.Pool{New: func() any { return new(digestScratch) }}

// digestSlots hashes the canonical forms of b's points, whose series' forms
// each fit a slot S: a point's is written as its time, the whole slot of
// its series (whose bytes past the form the next write overwrites) and its
// value.
func digestSlots[S [32]byte | [64]byte | [128]byte](h hash.Hash, b *Batch) {
	size := int(unsafe.Sizeof(*new(S)))
	sc := digestPool.Get().(*digestScratch)
	defer digestPool.Put(sc)
	// The bytes of a slot past its form are left from an earlier use:
	// they are copied but never hashed.
	sc.slots = resize(sc.slots, (len(b.tab)+1)*size)
	slots := unsafe.Slice((*S)(unsafe.Pointer(&sc.slots[0])), len(b.tab))
	sc.lens = resize(sc.lens, len(b.tab))
	lens := sc.lens
	for i := range b.tab {
		slot := unsafe.Slice((*byte)(unsafe.Pointer(&slots[i])), size)
		form := appendSeries(slot[:0], b.tab[i].Metric, b.tab[i].Labels)
		lens[i] = uint8(len(form))
	}
	// Room for a point past the flush limit: its slot is copied whole.
	sc.buf = resize(sc.buf, digestBufSize+8+size+8)
	buf := sc.buf
	n := copy(buf, digestHeader)
	for j, t := range b.times {
		if n > digestBufSize {
			h.Write(buf[:n])
			n = 0
		}
		id := b.ids[j]
		binary.BigEndian.PutUint64(buf[n:], uint64(t))
		*(*S)(unsafe.Pointer(&buf[n+8])) = slots[id]
		n += 8 + int(lens[id])
		binary.BigEndian.PutUint64(buf[n:], math.Float64bits(b.values[j]))
		n += 8
	}
	h.Write(buf[:n])
}

// digestPacked hashes the canonical forms of b's points, whose series'
// forms are up to longest bytes long, one copy of each.
func digestPacked(h hash.Hash, b *Batch, longest int) {
	size := 0
	for i := range b.tab {
		size += seriesSize(&b.tab[i])
	}
	canon := make([]byte, 0, size)
	off := make([]int, len(b.tab)+1)
	for i := range b.tab {
		canon = appendSeries(canon, b.tab[i].Metric, b.tab[i].Labels)
		off[i+1] = len(canon)
	}
	buf := make([]byte, max(digestBufSize, 2*(longest+16)))
	n := copy(buf, digestHeader)
	for j, t := range b.times {
		id := b.ids[j]
		s := canon[off[id]:off[id+1]]
		if n+len(s)+16 > len(buf) {
			h.Write(buf[:n])
			n = 0
		}
		binary.BigEndian.PutUint64(buf[n:], uint64(t))
		n += 8
		n += copy(buf[n:], s)
		binary.BigEndian.PutUint64(buf[n:], math.Float64bits(b.values[j]))
		n += 8
	}
	h.Write(buf[:n])
}
