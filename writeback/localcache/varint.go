package localcache

// uvarint2 decodes the varint at the start of b as binary.Uvarint does,
// without a branch on its length, when it is of 1 or 2 bytes and b holds
// 2; else it returns k == 0, and binary.Uvarint must decode it. Most of a
// record's indexes are of 1 or 2 bytes, mixed, which a loop over the
// bytes mispredicts. Callers write the fallback themselves: a wrapper
// that makes it does not inline (cost 149 against a budget of 80), and a
// call per varint costs what this saves.
func uvarint2(b []byte) (x uint64, k int) {
	if len(b) < 2 || b[0]&b[1]&0x80 != 0 {
		return 0, 0
	}
	more := uint64(b[0] >> 7) // 1 when the varint has a second byte
	return uint64(b[0]&0x7f) | uint64(b[1])<<7&-more, int(1 + more)
}
