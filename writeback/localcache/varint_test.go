package localcache

import (
	"encoding/binary"
	"testing"
)

// TestUvarint2 checks uvarint2 against binary.Uvarint for every first
// two bytes, in buffers of every length up to 3: it decodes as
// binary.Uvarint does or leaves the varint to it, and decodes every
// varint of 1 or 2 bytes itself when b holds 2 bytes.
func TestUvarint2(t *testing.T) {
	for b0 := range 256 {
		for b1 := range 256 {
			full := []byte{byte(b0), byte(b1), 1}
			for n := range len(full) + 1 {
				b := full[:n]
				x, k := uvarint2(b)
				wantX, wantK := binary.Uvarint(b)
				if k == 0 {
					if n >= 2 && (wantK == 1 || wantK == 2) {
						t.Fatalf("uvarint2(% x) left a varint of %d bytes to binary.Uvarint", b, wantK)
					}
					continue
				}
				if x != wantX || k != wantK {
					t.Fatalf("uvarint2(% x) = %d, %d, want %d, %d", b, x, k, wantX, wantK)
				}
			}
		}
	}
}
