package reprocess

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"
	"pgregory.net/rapid"

	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/tsstore/archive"
	"github.com/hourglass-io/hourglass/tsstore/archive/dirarchive"
)

// TestMergeSegments checks that merging the listed segments gives what the
// archive's Scan gives when the archive holds just those segments: the
// same points in the same order (time, ties in segment-name order), for
// random segments, ranges and matchers; and that an error from fn stops it.
func TestMergeSegments(t *testing.T) {
	ctx := context.Background()
	rapid.Check(t, func(t *rapid.T) {
		dir, err := os.MkdirTemp("", "reprocess-merge-")
		if err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(dir)
		a, err := dirarchive.Open(dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		nseg := rapid.IntRange(0, 4).Draw(t, "segments")
		for s := 0; s < nseg; s++ {
			n := rapid.IntRange(1, 600).Draw(t, "points")
			lo := int64(rapid.IntRange(0, 50).Draw(t, "lo")) * 1000
			span := int64(rapid.IntRange(1, 50).Draw(t, "span")) * 1000
			ps := make([]tsstore.Point, n)
			id := archive.SegmentID{Source: "t", Generation: uint64(s), MinTime: tsstore.MaxTimestamp}
			for i := range ps {
				ps[i] = tsstore.Point{Metric: "m", Labels: tsstore.Labels{{Name: "merchant", Value: fmt.Sprintf("m%d", rapid.IntRange(0, 2).Draw(t, "merchant"))}},
					Timestamp: lo + int64(rapid.Int64Range(0, span-1).Draw(t, "ts")), Value: float64(s*10000 + i)}
				id.MinTime, id.MaxTime = min(id.MinTime, ps[i].Timestamp), max(id.MaxTime, ps[i].Timestamp)
			}
			if _, err := a.Append(ctx, id, ps); err != nil {
				t.Fatal(err)
			}
		}
		from := int64(rapid.IntRange(0, 60).Draw(t, "from")) * 1000
		to := from + int64(rapid.IntRange(1, 60).Draw(t, "len"))*1000
		var ms []tsstore.Matcher
		if rapid.Bool().Draw(t, "filter") {
			m, _ := tsstore.NewMatcher(tsstore.MatchNotEqual, "merchant", "m1")
			ms = []tsstore.Matcher{m}
		}
		var want, got []tsstore.Point
		if err := a.Scan(ctx, archive.ScanRequest{From: from, To: to, Matchers: ms}, func(p tsstore.Point) error { want = append(want, p); return nil }); err != nil {
			t.Fatal(err)
		}
		segs, err := listSegments(ctx, a, 0, tsstore.MaxTimestamp)
		if err != nil {
			t.Fatal(err)
		}
		if err := mergeSegments(ctx, a, segs, from, to, ms, func(p tsstore.Point) error { got = append(got, p); return nil }); err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(want, got); d != "" {
			t.Fatalf("merge differs from scan (-scan +merge):\n%s", d)
		}
		if len(want) > 1 {
			stop := fmt.Errorf("stop")
			k := 0
			err := mergeSegments(ctx, a, segs, from, to, ms, func(tsstore.Point) error {
				k++
				if k == len(want)/2 {
					return stop
				}
				return nil
			})
			if err != stop || k != len(want)/2 {
				t.Fatalf("stopping: %v after %d points", err, k)
			}
		}
	})
}
