package segment

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"math"

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
// order of Compare. Only an append compared with a record of version 1
// computes it (the replay of a generation archived before version 2): a
// plain loop over the series' forms, made once.
func (b *Batch) digestV1() string {
	canon := make([]byte, 0, 64*len(b.tab))
	off := make([]int, len(b.tab)+1)
	longest := 0
	for i := range b.tab {
		canon = appendSeries(canon, b.tab[i].Metric, b.tab[i].Labels)
		off[i+1] = len(canon)
		longest = max(longest, off[i+1]-off[i])
	}
	h := sha256.New()
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
	return hex.EncodeToString(h.Sum(nil))
}

// digestBufSize is the size of the buffer of canonical forms that a
// digest hashes at a time.
const digestBufSize = 64 << 10
