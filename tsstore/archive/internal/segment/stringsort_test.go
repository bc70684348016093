package segment

import (
	"encoding/binary"
	"slices"
	"testing"

	"pgregory.net/rapid"
)

// TestSortPrefixFree checks the radix sort of strings against
// slices.Sort, on strings made as series keys are: content with no 0x00
// byte, then 0x00 and a distinct index.
func TestSortPrefixFree(t *testing.T) {
	content := rapid.StringOfN(rapid.RuneFrom([]rune{1, 2, 'a', 0xff}), 0, 12, -1)
	rapid.Check(t, func(t *rapid.T) {
		stem := content.Draw(t, "stem") // shared by many, as metric names are
		var a []string
		for i := range rapid.IntRange(0, 300).Draw(t, "n") {
			s := content.Draw(t, "content")
			if rapid.Bool().Draw(t, "stemmed") {
				s = stem + s
			}
			a = append(a, string(binary.BigEndian.AppendUint32(append([]byte(s), 0), uint32(i))))
		}
		want := slices.Sorted(slices.Values(a))
		sortPrefixFree(a, make([]string, len(a)), 0)
		if !slices.Equal(a, want) {
			t.Fatalf("sorted %q, want %q", a, want)
		}
	})
}
