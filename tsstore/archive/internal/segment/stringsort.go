package segment

import (
	"slices"
	"strings"
)

// radixStringsCutoff is the most strings sortPrefixFree sorts by
// comparisons rather than by a byte.
const radixStringsCutoff = 32

// sortPrefixFree sorts a, distinct strings none of which is a prefix of
// another (series keys, see rankSeries), by an MSD radix sort: a run of
// bytes all the strings share is skipped in one pass, then the strings
// are distributed by their next byte, each bucket sorted on from the byte
// after. Series keys of one segment share long runs (the metric, the
// label names, a value's stem) and differ in a few bytes: where a
// comparison sort compares the shared bytes again at every comparison, the
// radix sort reads them once. tmp is as long as a at least.
func sortPrefixFree(a, tmp []string, depth int) {
	for len(a) > radixStringsCutoff {
		// Bytes all the strings share: none ends before it differs from
		// the first.
		first := a[0]
		common := len(first)
		for _, s := range a[1:] {
			common = min(common, depth+commonPrefix(first[depth:common], s[depth:]))
			if common == depth {
				break
			}
		}
		depth = common
		var count [256]int
		for _, s := range a {
			count[s[depth]]++
		}
		var start [256]int
		sum := 0
		for b, n := range count {
			start[b] = sum
			sum += n
		}
		next := start
		for _, s := range a {
			b := s[depth]
			tmp[next[b]] = s
			next[b]++
		}
		copy(a, tmp[:len(a)])
		// The buckets but the largest by recursion, the largest by the
		// loop: the recursion is as deep as log2(len(a)) at most.
		largest := 0
		for b, n := range count {
			if n > count[largest] {
				largest = b
			}
		}
		for b, n := range count {
			if n > 1 && b != largest {
				sortPrefixFree(a[start[b]:start[b]+n], tmp, depth+1)
			}
		}
		a, depth = a[start[largest]:start[largest]+count[largest]], depth+1
	}
	if len(a) > 1 {
		slices.SortFunc(a, func(x, y string) int { return strings.Compare(x[depth:], y[depth:]) })
	}
}

// commonPrefix returns the length of the longest common prefix of a and b.
func commonPrefix(a, b string) int {
	n := min(len(a), len(b))
	i := 0
	for i+8 <= n && a[i:i+8] == b[i:i+8] {
		i += 8
	}
	for i < n && a[i] == b[i] {
		i++
	}
	return i
}
