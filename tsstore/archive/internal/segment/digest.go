package segment

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"
	"strconv"
	"strings"
	"unsafe"

	"github.com/hourglass-io/hourglass/tsstore"
)

// A content digest names the points of a segment, whatever the bytes of
// its file (which may differ between versions of the Parquet library or
// of the encoder): two segments have the same points exactly when their
// digests of one version are equal. The manifest records it, and a second
// append of a name is a no-op or a conflict by it.
//
// Its text says its version. Version 1, the bare 64 hex digits of a
// SHA-256, is in every segment written before version 2 (in manifests,
// object metadata and KeyContent), and stays there: digests of different
// versions are never compared as strings; the batch's digest in the stored
// one's version is (Content.Same).
const (
	// DigestV1 is the digest of each point's canonical form (time, series'
	// canonical form, value): some 60 bytes hashed a point.
	DigestV1 = 1
	// DigestV2 is the digest of the series table once, then the point
	// columns (series rank, time, value): 20 bytes hashed a point.
	DigestV2 = 2
	// DigestVersion is the version that Batch.Digest computes, of the
	// segments written now.
	DigestVersion = DigestV2
)

// digestHeaderV2 starts the canonical form of a segment's points in
// version 2.
const digestHeaderV2 = "hourglass-points-v2\n"

// VersionOf returns the version of the content digest d: 1 for 64
// characters (version 1's hex, as every older writer checked it), N for
// "vN:" and 64 lowercase hex digits. A version above DigestVersion (of a
// newer writer) is returned, not refused: its records stay readable;
// only Content.Same cannot compare them.
func VersionOf(d string) (int, error) {
	if len(d) == 64 {
		return DigestV1, nil
	}
	v, sum, ok := strings.Cut(d, ":")
	n, err := strconv.Atoi(strings.TrimPrefix(v, "v"))
	if !ok || !strings.HasPrefix(v, "v") || err != nil || n < 2 || strconv.Itoa(n) != v[1:] || !isHex(sum) {
		return 0, fmt.Errorf("content digest %q is neither 64 hex digits nor \"v<version>:\" and 64 hex digits", d)
	}
	return n, nil
}

func isHex(s string) bool {
	if len(s) != 2*sha256.Size {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// Digest returns the content digest of the points ps (in any order), of
// version DigestVersion.
func Digest(ps []tsstore.Point) string { return Prepare(ps).Digest() }

// Digest returns the content digest of the batch's points, of version
// DigestVersion.
func (b *Batch) Digest() string { return b.digestV2() }

// DigestIn returns the content digest of the batch's points of version
// v, which must be 1 or 2.
func (b *Batch) DigestIn(v int) (string, error) {
	switch v {
	case DigestV1:
		return b.digestV1(), nil
	case DigestV2:
		return b.digestV2(), nil
	}
	return "", fmt.Errorf("content digest version %d is unknown (this program knows 1 to %d)", v, DigestVersion)
}

// Content is the content digest of a batch's points (of DigestVersion,
// computed once), with the batch, to tell whether a stored digest of any
// version names the same points. Not safe for concurrent use.
type Content struct {
	// Digest is Batch.Digest.
	Digest string
	batch  *Batch
}

// Content returns the content of the batch. The batch must not change
// while the content is in use.
func (b *Batch) Content() Content { return Content{Digest: b.Digest(), batch: b} }

// Same reports whether stored, a content digest of any version (a
// record's), names the points of the batch: compared with Digest in the
// current version, with the batch's digest of version 1 when it is of
// version 1 (a segment written before version 2). It fails when stored is
// malformed or of a version this program does not know (written by a
// newer one): then the points cannot be compared.
func (c Content) Same(stored string) (bool, error) {
	v, err := VersionOf(stored)
	if err != nil {
		return false, err
	}
	if v == DigestVersion {
		return stored == c.Digest, nil
	}
	d, err := c.batch.DigestIn(v)
	if err != nil {
		return false, fmt.Errorf("cannot compare with content %s: %w", stored, err)
	}
	return stored == d, nil
}

// littleEndian is whether the machine stores integers little-endian, as
// the canonical form of version 2 does: its point columns are then hashed
// from the batch's memory.
var littleEndian = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

// digestV2 returns the content digest of version 2 of the batch's points:
// "v2:" and the hex SHA-256 of
//
//	digestHeaderV2
//	uvarint  the number of series
//	         each series' canonical form (appendSeries: length-prefixed
//	         strings), in rank order ((metric, labels) order)
//	uint64   the number of points n
//	n uint32 the rank of each point's series
//	n int64  the time of each point
//	n uint64 the bits of each point's value
//
// integers little-endian, points in the order of Compare. The series table
// is the distinct series of the points (PrepareColumns), so the digest
// depends on the multiset of points alone.
func (b *Batch) digestV2() string {
	h := sha256.New()
	buf := make([]byte, 0, digestBufSize+256)
	buf = append(buf, digestHeaderV2...)
	buf = binary.AppendUvarint(buf, uint64(len(b.tab)))
	for i := range b.tab {
		if len(buf) > digestBufSize {
			h.Write(buf)
			buf = buf[:0]
		}
		buf = appendSeries(buf, b.tab[i].Metric, b.tab[i].Labels)
	}
	buf = binary.LittleEndian.AppendUint64(buf, uint64(b.Len()))
	h.Write(buf)
	if littleEndian {
		hashColumn(h, b.ids)
		hashColumn(h, b.times)
		hashColumn(h, b.values)
	} else {
		// Writing to a hash never fails.
		_ = binary.Write(h, binary.LittleEndian, b.ids)
		_ = binary.Write(h, binary.LittleEndian, b.times)
		_ = binary.Write(h, binary.LittleEndian, b.values)
	}
	return "v2:" + hex.EncodeToString(h.Sum(nil))
}

// hashColumn hashes the memory of the column c, which is its canonical
// form on a little-endian machine.
func hashColumn[E int32 | int64 | float64](h hash.Hash, c []E) {
	if len(c) > 0 {
		h.Write(unsafe.Slice((*byte)(unsafe.Pointer(&c[0])), len(c)*int(unsafe.Sizeof(c[0]))))
	}
}
