package segment

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"math"
	"slices"
	"strings"
	"testing"

	"pgregory.net/rapid"

	"github.com/hourglass-io/hourglass/tsstore"
)

// referenceDigestV2 is version 2 of the content digest as its doc comment
// specifies it, written plainly from the points: the oracle of digestV2.
func referenceDigestV2(ps []tsstore.Point) string {
	ps = slices.Clone(ps)
	slices.SortFunc(ps, func(a, b tsstore.Point) int { return Compare(&a, &b) })
	series := func(p *tsstore.Point) string { return string(appendSeries(nil, p.Metric, p.Labels)) }
	compareSeries := func(a, b *tsstore.Point) int {
		if c := strings.Compare(a.Metric, b.Metric); c != 0 {
			return c
		}
		return a.Labels.Compare(b.Labels)
	}
	bySeries := slices.Clone(ps)
	slices.SortFunc(bySeries, func(a, b tsstore.Point) int { return compareSeries(&a, &b) })
	var tab []tsstore.Point // a point of each series, in rank order
	for i := range bySeries {
		if i == 0 || compareSeries(&bySeries[i-1], &bySeries[i]) != 0 {
			tab = append(tab, bySeries[i])
		}
	}
	rank := func(p *tsstore.Point) uint32 {
		r, _ := slices.BinarySearchFunc(tab, *p, func(a, b tsstore.Point) int { return compareSeries(&a, &b) })
		return uint32(r)
	}
	b := []byte("hourglass-points-v2\n")
	b = binary.AppendUvarint(b, uint64(len(tab)))
	for i := range tab {
		b = append(b, series(&tab[i])...)
	}
	b = binary.LittleEndian.AppendUint64(b, uint64(len(ps)))
	for i := range ps {
		b = binary.LittleEndian.AppendUint32(b, rank(&ps[i]))
	}
	for _, p := range ps {
		b = binary.LittleEndian.AppendUint64(b, uint64(p.Timestamp))
	}
	for _, p := range ps {
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(p.Value))
	}
	sum := sha256.Sum256(b)
	return "v2:" + hex.EncodeToString(sum[:])
}

// drawPoints draws points of few series (so that times, series and values
// repeat), with labels strings that hold 0x00, and values that differ by
// the sign of zero or a NaN's bits.
func drawPoints(t *rapid.T) []tsstore.Point {
	str := rapid.StringOfN(rapid.RuneFrom([]rune{0, 1, 'a', 'é'}), 0, 6, -1)
	sets := rapid.SliceOfN(rapid.Custom(func(t *rapid.T) tsstore.SeriesLabels {
		s := tsstore.SeriesLabels{Metric: rapid.SampledFrom([]string{"a", "a\x00", "ab", ""}).Draw(t, "metric")}
		names := rapid.SliceOfNDistinct(str, 0, 3, func(s string) string { return s }).Draw(t, "names")
		slices.Sort(names)
		for _, n := range names {
			s.Labels = append(s.Labels, tsstore.Label{Name: n, Value: str.Draw(t, "value")})
		}
		return s
	}), 1, 6).Draw(t, "series")
	values := []float64{0, negZero(), 1, -1.5, math.Inf(1), math.NaN(), math.Float64frombits(0x7ff8000000000001)}
	n := rapid.IntRange(1, 300).Draw(t, "points")
	ps := make([]tsstore.Point, n)
	for i := range ps {
		s := sets[rapid.IntRange(0, len(sets)-1).Draw(t, "series")]
		ps[i] = tsstore.Point{Metric: s.Metric, Labels: s.Labels, Timestamp: rapid.Int64Range(-3, 3).Draw(t, "time") << rapid.IntRange(0, 40).Draw(t, "shift"),
			Value: rapid.SampledFrom(values).Draw(t, "value")}
	}
	return ps
}

// TestDigestsDependOnThePointsAlone checks both versions of the digest:
// the same multiset of points, in any order, with series in shared or
// copied memory, as points or as columns of any series table (repeated
// and unused entries), has one digest; another multiset (a point changed,
// dropped or repeated) has another; and version 2 is its specification
// (referenceDigestV2).
func TestDigestsDependOnThePointsAlone(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		ps := drawPoints(t)
		b := Prepare(ps)
		v1, v2 := b.digestV1(), b.Digest()
		if want := referenceDigestV2(ps); v2 != want {
			t.Fatalf("Digest = %s, its specification %s", v2, want)
		}
		other := copies(ps)
		perm := rapid.Permutation(other).Draw(t, "order")
		c := ColumnsOf(perm)
		// Another series table: an unused entry first, and every point's
		// series in an entry of its own.
		c.Series = append([]tsstore.SeriesLabels{{Metric: "unused"}}, c.Series...)
		for i := range c.IDs {
			c.IDs[i]++
			if rapid.Bool().Draw(t, "own entry") {
				c.Series = append(c.Series, tsstore.SeriesLabels{Metric: perm[i].Metric, Labels: slices.Clone(perm[i].Labels)})
				c.IDs[i] = int32(len(c.Series) - 1)
			}
		}
		b2 := PrepareColumns(c)
		if got := b2.digestV1(); got != v1 {
			t.Fatalf("version 1: %s, reordered and rechunked %s", v1, got)
		}
		if got := b2.Digest(); got != v2 {
			t.Fatalf("version 2: %s, reordered and rechunked %s", v2, got)
		}
		changed := slices.Clone(ps)
		i := rapid.IntRange(0, len(ps)-1).Draw(t, "changed")
		switch rapid.IntRange(0, 4).Draw(t, "change") {
		case 0:
			changed[i].Timestamp++
		case 1:
			changed[i].Value = math.Float64frombits(math.Float64bits(changed[i].Value) ^ 1<<63)
		case 2:
			changed[i].Metric += "x"
		case 3:
			changed = slices.Delete(changed, i, i+1)
		case 4:
			changed = append(changed, changed[i])
		}
		if len(changed) == 0 {
			return
		}
		cb := Prepare(changed)
		if cb.digestV1() == v1 || cb.Digest() == v2 {
			t.Fatalf("other points, same digest (v1 %t, v2 %t)", cb.digestV1() == v1, cb.Digest() == v2)
		}
	})
}

// TestDigestV2ByteOrder checks that a big-endian machine, which writes the
// point columns little-endian through a buffer, hashes what a little-endian
// one hashes from the columns' memory.
func TestDigestV2ByteOrder(t *testing.T) {
	ps := append(points(t, 30_000), benchPoints()[:200_000]...)
	b := Prepare(ps)
	native := b.Digest()
	defer func(le bool) { littleEndian = le }(littleEndian)
	littleEndian = !littleEndian
	if got := b.Digest(); got != native {
		t.Errorf("little-endian %t: %s; the other path: %s", !littleEndian, native, got)
	}
	if want := referenceDigestV2(ps); native != want {
		t.Errorf("Digest = %s, its specification %s", native, want)
	}
}

func TestVersionOf(t *testing.T) {
	hex64 := strings.Repeat("0123456789abcdef", 4)
	for _, tc := range []struct {
		d    string
		want int // 0: an error
	}{
		{hex64, 1},
		{strings.ToUpper(hex64), 1}, // as loose as the check of version 1's writers
		{"v2:" + hex64, 2},
		{"v17:" + hex64, 17},
		{"", 0},
		{hex64[:63], 0},
		{"v2:" + strings.ToUpper(hex64), 0},
		{"v2:" + hex64 + "0", 0},
		{"v1:" + hex64, 0},
		{"v02:" + hex64, 0},
		{"v+2:" + hex64, 0},
		{"2:" + hex64, 0},
		{"v2" + hex64, 0},
	} {
		got, err := VersionOf(tc.d)
		if (err != nil) != (tc.want == 0) || got != tc.want {
			t.Errorf("VersionOf(%q) = %d, %v; want %d", tc.d, got, err, tc.want)
		}
	}
}

// TestContentSame checks that a stored digest of either version is
// compared in its version: the same points are the same, whatever the
// version, and other points are other.
func TestContentSame(t *testing.T) {
	ps := points(t, 1000)
	c := Prepare(ps).Content()
	other := Prepare(ps[1:])
	v1, _ := Prepare(ps).DigestIn(DigestV1)
	o1, _ := other.DigestIn(DigestV1)
	for _, tc := range []struct {
		stored string
		same   bool
	}{{v1, true}, {c.Digest, true}, {o1, false}, {other.Digest(), false}} {
		same, err := c.Same(tc.stored)
		if err != nil || same != tc.same {
			t.Errorf("Same(%s) = %t, %v; want %t", tc.stored, same, err, tc.same)
		}
	}
	for _, stored := range []string{"v3:" + c.Digest[3:], "nope"} {
		if same, err := c.Same(stored); err == nil || same {
			t.Errorf("Same(%s) = %t, %v; want an error", stored, same, err)
		}
	}
	if !strings.HasPrefix(c.Digest, "v2:") || len(c.Digest) != 67 {
		t.Errorf("Digest %q is not \"v2:\" and 64 hex digits", c.Digest)
	}
}
