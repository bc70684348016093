// Package archivetest is the conformance suite every archive.Archive
// backend runs, in the manner of tsstore/storetest:
//
//	func TestConformance(t *testing.T) {
//		archivetest.Run(t, func(t *testing.T) archive.Archive { return openMyArchive(t) })
//	}
//
// The suite checks the round trip of points with awkward labels, scans
// across segment and hour boundaries in timestamp order (ties in
// segment-name order), metric and label filters, the segment listing and
// stats, idempotent appends of the same content, conflicts on other
// content, invalid input rejected with nothing visible, concurrent appends
// (also of one name) and scans (run it under -race), context cancellation,
// errors of the callbacks, and use after Close; and, for a backend that is
// an archive.ColumnsAppender, that columns make the segment the same
// points make (repeated series entries are one series), and that invalid
// columns and other content under a stored name are rejected.
//
// Corruption and crash tests depend on how a backend stores bytes and live
// in the backend's own tests.
package archivetest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/tsstore/archive"
)

// Base is the time (ms) around which the suite writes: 2026-01-01T00:00Z.
var Base = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()

const (
	minute = int64(time.Minute / time.Millisecond)
	hour   = 60 * minute
)

// NewArchive opens an empty archive for one test. It should register its
// own cleanup with t.Cleanup; the suite also calls Close, which must
// therefore be safe to call twice.
type NewArchive func(t *testing.T) archive.Archive

// Run runs the conformance suite against the archives made by newArchive.
func Run(t *testing.T, newArchive NewArchive) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(*testing.T, NewArchive)
	}{
		{"RoundTripAwkwardLabels", testRoundTrip},
		{"ScanAcrossSegmentsAndHours", testScanBoundaries},
		{"Filters", testFilters},
		{"SegmentsAndStat", testSegmentsAndStat},
		{"IdempotentAppend", testIdempotent},
		{"Conflict", testConflict},
		{"InvalidAppend", testInvalidAppend},
		{"InvalidRequests", testInvalidRequests},
		{"CallbackError", testCallbackError},
		{"Concurrent", testConcurrent},
		{"Cancelled", testCancelled},
		{"UseAfterClose", testUseAfterClose},
		{"AppendColumns", testAppendColumns},
		{"AppendColumnsConflict", testAppendColumnsConflict},
		{"InvalidAppendColumns", testInvalidAppendColumns},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newArchive) })
	}
}

func open(t *testing.T, newArchive NewArchive) archive.Archive {
	a := newArchive(t)
	t.Cleanup(func() { _ = a.Close() })
	return a
}

func labels(t testing.TB, kv ...string) tsstore.Labels {
	t.Helper()
	ls, err := tsstore.NewLabels(kv...)
	if err != nil {
		t.Fatal(err)
	}
	return ls
}

func pt(metric string, ls tsstore.Labels, ts int64, v float64) tsstore.Point {
	return tsstore.Point{Metric: metric, Labels: ls, Timestamp: ts, Value: v}
}

// idOf returns the id of a segment of points: their time range.
func idOf(source string, gen uint64, shard int, ps []tsstore.Point) archive.SegmentID {
	id := archive.SegmentID{Source: source, Generation: gen, Shard: shard, MinTime: ps[0].Timestamp, MaxTime: ps[0].Timestamp}
	for _, p := range ps {
		id.MinTime = min(id.MinTime, p.Timestamp)
		id.MaxTime = max(id.MaxTime, p.Timestamp)
	}
	return id
}

func mustAppend(t testing.TB, a archive.Archive, id archive.SegmentID, ps []tsstore.Point) archive.SegmentInfo {
	t.Helper()
	info, err := a.Append(context.Background(), id, ps)
	if err != nil {
		t.Fatalf("Append(%s, %d points): %v", id.Name(), len(ps), err)
	}
	return info
}

func scanAll(t testing.TB, a archive.Archive, r archive.ScanRequest) []tsstore.Point {
	t.Helper()
	var out []tsstore.Point
	if err := a.Scan(context.Background(), r, func(p tsstore.Point) error {
		out = append(out, p)
		return nil
	}); err != nil {
		t.Fatalf("Scan(%+v): %v", r, err)
	}
	return out
}

func readAll(t testing.TB, a archive.Archive, name string) []tsstore.Point {
	t.Helper()
	var out []tsstore.Point
	if err := a.Read(context.Background(), name, func(p tsstore.Point) error {
		out = append(out, p)
		return nil
	}); err != nil {
		t.Fatalf("Read(%s): %v", name, err)
	}
	return out
}

// comparePoints orders points by every field, to compare multisets.
func comparePoints(a, b tsstore.Point) int {
	return cmp.Or(cmp.Compare(a.Timestamp, b.Timestamp), strings.Compare(a.Metric, b.Metric),
		a.Labels.Compare(b.Labels), cmp.Compare(a.Value, b.Value))
}

// sameMultiset reports the difference between two multisets of points.
func sameMultiset(want, got []tsstore.Point) string {
	w, g := slices.Clone(want), slices.Clone(got)
	slices.SortFunc(w, comparePoints)
	slices.SortFunc(g, comparePoints)
	return gocmp.Diff(w, g, cmpopts.EquateEmpty())
}

// checkTimeOrder reports points out of timestamp order, or (when rank is
// not nil) ties out of segment-name order, rank giving a point's segment.
func checkTimeOrder(t testing.TB, ps []tsstore.Point, rank func(tsstore.Point) string) {
	t.Helper()
	for i := 1; i < len(ps); i++ {
		a, b := ps[i-1], ps[i]
		if a.Timestamp > b.Timestamp {
			t.Fatalf("point %d at %d after point %d at %d: not in timestamp order", i, b.Timestamp, i-1, a.Timestamp)
		}
		if rank != nil && a.Timestamp == b.Timestamp && rank(a) > rank(b) {
			t.Fatalf("points %d and %d at %d: segment %s after %s: ties not in segment-name order", i-1, i, a.Timestamp, rank(b), rank(a))
		}
	}
}

func shuffled(ps []tsstore.Point, seed uint64) []tsstore.Point {
	out := slices.Clone(ps)
	r := rand.New(rand.NewPCG(seed, 1))
	r.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

// AwkwardValues are label values that break naive encodings.
var AwkwardValues = []string{"a b", "a,b", "a=b", `a"b`, `a\b`, "a'b", "ünïcødé ✓", "日本語", "tab\there", "new\nline",
	"cr\r\nlf", "{braces}", "a.b*c+?", " lead", "trail ", "$dollar", "100%", "nul\x00byte", "=", ",", `"`, `\`, "\n"}

func testRoundTrip(t *testing.T, newArchive NewArchive) {
	a := open(t, newArchive)
	var ps []tsstore.Point
	for i, v := range AwkwardValues {
		ps = append(ps,
			pt("awkward", labels(t, "merchant", "m1", "v", v), Base+int64(i%5), float64(i)),
			pt("awkward", labels(t, "merchant", v), Base+int64(i%5), -float64(i)-0.5),
			pt("awkward_"+fmt.Sprint(i), labels(t, "a", v, "b", v, "z_last", "1"), Base+int64(i), 1e300),
		)
	}
	ps = append(ps,
		pt("nolabels", nil, Base+3, 0),
		pt("nolabels", nil, Base+3, 0), // a duplicate raw point is kept
		pt("tiny", labels(t, "merchant", "m1"), Base+4, 5e-324),
		pt("neg", labels(t, "merchant", "m1"), Base+2, -1.25),
		pt("long", labels(t, "merchant", strings.Repeat("x", tsstore.MaxValueLen)), Base, 7),
	)
	id := idOf("host-1.example_A", 7, 3, ps)
	info := mustAppend(t, a, id, shuffled(ps, 1))
	if info.Name != id.Name() || info.ID != id || info.Points != int64(len(ps)) || info.Bytes <= 0 ||
		!regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(info.Checksum) || info.Created.IsZero() {
		t.Errorf("Append returned %+v, want name %s, id %+v, %d points, a size, a hex SHA-256 and a creation time", info, id.Name(), id, len(ps))
	}
	got := readAll(t, a, info.Name)
	checkTimeOrder(t, got, nil)
	if d := sameMultiset(ps, got); d != "" {
		t.Errorf("Read did not return the points appended (-want +got):\n%s", d)
	}
	got = scanAll(t, a, archive.ScanRequest{From: 0, To: tsstore.MaxTimestamp})
	checkTimeOrder(t, got, nil)
	if d := sameMultiset(ps, got); d != "" {
		t.Errorf("Scan did not return the points appended (-want +got):\n%s", d)
	}
	for i, v := range AwkwardValues {
		m, err := tsstore.NewMatcher(tsstore.MatchEqual, "v", v)
		if err != nil {
			t.Fatal(err)
		}
		got := scanAll(t, a, archive.ScanRequest{From: Base, To: Base + minute, Metric: "awkward", Matchers: []tsstore.Matcher{m}})
		want := []tsstore.Point{pt("awkward", labels(t, "merchant", "m1", "v", v), Base+int64(i%5), float64(i))}
		if d := gocmp.Diff(want, got); d != "" {
			t.Errorf("label value %q: Scan with v=%q (-want +got):\n%s", v, v, d)
		}
	}
}

// segmentsAcrossHours appends five segments whose time ranges overlap each
// other and cross hour boundaries, each point labelled with its segment
// (seg), and returns the points and the segment names by seg.
func segmentsAcrossHours(t *testing.T, a archive.Archive) ([]tsstore.Point, map[string]string) {
	type seg struct {
		gen         uint64
		shard       int
		from, to    int64 // ms, inclusive
		every       int64
		metric      string
		merchantMod int
	}
	segs := []seg{
		{1, 0, Base + 50*minute, Base + 70*minute, 7 * 1000, "views", 3},   // crosses 01:00
		{1, 1, Base + 55*minute, Base + 65*minute, 5 * 1000, "orders", 2},  // same hour, other shard
		{2, 0, Base + 59*minute, Base + 2*hour, 11 * 1000, "views", 4},     // starts in hour 0, ends in 2
		{3, 0, Base + hour, Base + hour + 30*minute, 3 * 1000, "views", 3}, // starts on the hour
		{4, 0, Base + 3*hour, Base + 3*hour + minute, 1000, "revenue", 1},  // alone, later
		// Starts on a point of segment 0, with a name before it: its first
		// point must come first.
		{0, 0, Base + 50*minute + 70*1000, Base + 52*minute, 10 * 1000, "orders", 2},
	}
	var all []tsstore.Point
	names := map[string]string{}
	for i, s := range segs {
		var ps []tsstore.Point
		k := 0
		for ts := s.from; ts <= s.to; ts += s.every {
			ls := labels(t, "merchant", fmt.Sprintf("m%d", k%s.merchantMod), "seg", fmt.Sprint(i))
			if k%5 == 0 {
				ls = labels(t, "merchant", fmt.Sprintf("m%d", k%s.merchantMod), "seg", fmt.Sprint(i), "page", "/cart")
			}
			ps = append(ps, pt(s.metric, ls, ts, float64(k)))
			// A second point at the same time in every tenth step.
			if k%10 == 0 {
				ps = append(ps, pt(s.metric, ls, ts, float64(-k)))
			}
			k++
		}
		// Aligned to whole seconds, so points of different segments share
		// timestamps: ties.
		info := mustAppend(t, a, idOf("src", s.gen, s.shard, ps), shuffled(ps, uint64(i)))
		names[fmt.Sprint(i)] = info.Name
		all = append(all, ps...)
	}
	return all, names
}

func filterPoints(ps []tsstore.Point, from, to int64, keep func(tsstore.Point) bool) []tsstore.Point {
	var out []tsstore.Point
	for _, p := range ps {
		if p.Timestamp >= from && p.Timestamp < to && (keep == nil || keep(p)) {
			out = append(out, p)
		}
	}
	return out
}

func testScanBoundaries(t *testing.T, newArchive NewArchive) {
	a := open(t, newArchive)
	all, names := segmentsAcrossHours(t, a)
	rank := func(p tsstore.Point) string { return names[p.Labels.Get("seg")] }
	for _, r := range []struct{ from, to int64 }{
		{0, tsstore.MaxTimestamp},
		{Base + hour, Base + 2*hour},                         // one hour exactly, To exclusive
		{Base + hour - 1, Base + hour + 1},                   // two milliseconds around the hour
		{Base + 55*minute, Base + 55*minute + 1},             // one millisecond
		{Base + 59*minute + 30*1000, Base + 61*minute},       // across the hour, all overlapping
		{Base + 2*hour + 1, Base + 3*hour},                   // a gap
		{Base + 70*minute, Base + 3*hour + 30*1000},          // from the end of one segment into another
		{Base + 3*hour + minute, Base + 3*hour + minute + 1}, // the last point
		{Base + 3*hour + minute + 1, tsstore.MaxTimestamp},   // after everything
		{0, Base + 50*minute},                                // before everything
	} {
		got := scanAll(t, a, archive.ScanRequest{From: r.from, To: r.to})
		checkTimeOrder(t, got, rank)
		if d := sameMultiset(filterPoints(all, r.from, r.to, nil), got); d != "" {
			t.Errorf("Scan [%s, %s) (-want +got):\n%s", tsstore.TimeOf(r.from), tsstore.TimeOf(r.to), d)
		}
	}
	// Every segment read on its own.
	for seg, name := range names {
		got := readAll(t, a, name)
		checkTimeOrder(t, got, nil)
		want := filterPoints(all, 0, tsstore.MaxTimestamp, func(p tsstore.Point) bool { return p.Labels.Get("seg") == seg })
		if d := sameMultiset(want, got); d != "" {
			t.Errorf("Read(%s) (-want +got):\n%s", name, d)
		}
	}
}

func matcher(t testing.TB, mt tsstore.MatchType, n, v string) tsstore.Matcher {
	t.Helper()
	m, err := tsstore.NewMatcher(mt, n, v)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func testFilters(t *testing.T, newArchive NewArchive) {
	a := open(t, newArchive)
	all, _ := segmentsAcrossHours(t, a)
	from, to := Base+55*minute, Base+2*hour
	for _, tc := range []struct {
		name   string
		metric string
		ms     []tsstore.Matcher
		keep   func(tsstore.Point) bool
	}{
		{"metric", "views", nil, func(p tsstore.Point) bool { return p.Metric == "views" }},
		{"metric without points", "nothing", nil, func(tsstore.Point) bool { return false }},
		{"equal", "", []tsstore.Matcher{matcher(t, tsstore.MatchEqual, "merchant", "m1")},
			func(p tsstore.Point) bool { return p.Labels.Get("merchant") == "m1" }},
		{"not equal and metric", "views", []tsstore.Matcher{matcher(t, tsstore.MatchNotEqual, "merchant", "m1")},
			func(p tsstore.Point) bool { return p.Metric == "views" && p.Labels.Get("merchant") != "m1" }},
		{"regexp anchored", "", []tsstore.Matcher{matcher(t, tsstore.MatchRegexp, "merchant", "m[12]")},
			func(p tsstore.Point) bool { m := p.Labels.Get("merchant"); return m == "m1" || m == "m2" }},
		{"not regexp", "", []tsstore.Matcher{matcher(t, tsstore.MatchNotRegexp, "merchant", "m.*")},
			func(tsstore.Point) bool { return false }},
		{"missing label equals empty", "", []tsstore.Matcher{matcher(t, tsstore.MatchEqual, "page", "")},
			func(p tsstore.Point) bool { return !p.Labels.Has("page") }},
		{"two matchers", "", []tsstore.Matcher{matcher(t, tsstore.MatchEqual, "page", "/cart"), matcher(t, tsstore.MatchRegexp, "seg", "1|2")},
			func(p tsstore.Point) bool {
				s := p.Labels.Get("seg")
				return p.Labels.Has("page") && (s == "1" || s == "2")
			}},
		// A literal regexp matcher, compiled by the archive.
		{"uncompiled regexp literal", "", []tsstore.Matcher{{Type: tsstore.MatchRegexp, Name: "seg", Value: "[03]"}},
			func(p tsstore.Point) bool { s := p.Labels.Get("seg"); return s == "0" || s == "3" }},
	} {
		got := scanAll(t, a, archive.ScanRequest{From: from, To: to, Metric: tc.metric, Matchers: tc.ms})
		checkTimeOrder(t, got, nil)
		if d := sameMultiset(filterPoints(all, from, to, tc.keep), got); d != "" {
			t.Errorf("%s: (-want +got):\n%s", tc.name, d)
		}
	}
}

func testSegmentsAndStat(t *testing.T, newArchive NewArchive) {
	a := open(t, newArchive)
	ctx := context.Background()
	st, err := a.Stat(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st != (archive.Stats{}) {
		t.Errorf("Stat of an empty archive: %+v, want zeros", st)
	}
	if segs, err := a.Segments(ctx, 0, tsstore.MaxTimestamp); err != nil || len(segs) != 0 {
		t.Errorf("Segments of an empty archive: %v, %v", segs, err)
	}
	all, names := segmentsAcrossHours(t, a)
	byName := map[string]archive.SegmentInfo{}
	segs, err := a.Segments(ctx, 0, tsstore.MaxTimestamp)
	if err != nil {
		t.Fatal(err)
	}
	var bytes int64
	for _, s := range segs {
		byName[s.Name] = s
		bytes += s.Bytes
	}
	if len(segs) != len(names) || !slices.IsSortedFunc(segs, func(x, y archive.SegmentInfo) int { return strings.Compare(x.Name, y.Name) }) {
		t.Errorf("Segments returned %d segments (sorted: %v), want %d sorted by name", len(segs), slices.IsSortedFunc(segs, func(x, y archive.SegmentInfo) int { return strings.Compare(x.Name, y.Name) }), len(names))
	}
	minT, maxT := all[0].Timestamp, all[0].Timestamp
	for _, p := range all {
		minT, maxT = min(minT, p.Timestamp), max(maxT, p.Timestamp)
	}
	st, err = a.Stat(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := archive.Stats{Segments: int64(len(names)), Points: int64(len(all)), Bytes: bytes, MinTime: minT, MaxTime: maxT}
	if st != want {
		t.Errorf("Stat: %+v, want %+v", st, want)
	}
	for _, r := range []struct{ from, to int64 }{
		{Base + hour, Base + hour + 1}, {Base + 70*minute, Base + 70*minute + 1}, {Base + 70*minute + 1, Base + 3*hour},
		{Base + 2*hour + 1, Base + 3*hour}, {0, Base + 50*minute}, {0, Base + 50*minute + 1}, {Base + 3*hour + minute + 1, tsstore.MaxTimestamp},
	} {
		got, err := a.Segments(ctx, r.from, r.to)
		if err != nil {
			t.Fatal(err)
		}
		var gotNames, wantNames []string
		for _, s := range got {
			gotNames = append(gotNames, s.Name)
		}
		for _, s := range segs {
			if s.ID.MinTime < r.to && s.ID.MaxTime >= r.from {
				wantNames = append(wantNames, s.Name)
			}
		}
		if d := gocmp.Diff(wantNames, gotNames, cmpopts.EquateEmpty()); d != "" {
			t.Errorf("Segments [%d, %d) (-want +got):\n%s", r.from-Base, r.to-Base, d)
		}
	}
}

func testIdempotent(t *testing.T, newArchive NewArchive) {
	a := open(t, newArchive)
	ls := labels(t, "merchant", "m1")
	ps := []tsstore.Point{pt("views", ls, Base, 1), pt("views", ls, Base+1, 2), pt("orders", ls, Base+1, 3), pt("views", ls, Base+1, 2)}
	id := idOf("src", 1, 0, ps)
	first := mustAppend(t, a, id, ps)
	for i := 0; i < 3; i++ {
		again := mustAppend(t, a, id, shuffled(ps, uint64(i)))
		if d := gocmp.Diff(first, again); d != "" {
			t.Errorf("appending the same points again (in another order) did not return the stored info (-first +again):\n%s", d)
		}
	}
	st, err := a.Stat(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.Segments != 1 || st.Points != int64(len(ps)) {
		t.Errorf("after repeated appends: %+v, want one segment of %d points", st, len(ps))
	}
	if got := scanAll(t, a, archive.ScanRequest{From: 0, To: tsstore.MaxTimestamp}); len(got) != len(ps) {
		t.Errorf("Scan after repeated appends returned %d points, want %d", len(got), len(ps))
	}
}

func testConflict(t *testing.T, newArchive NewArchive) {
	a := open(t, newArchive)
	ls := labels(t, "merchant", "m1")
	ps := []tsstore.Point{pt("views", ls, Base, 1), pt("views", ls, Base+10, 2)}
	id := idOf("src", 1, 0, ps)
	info := mustAppend(t, a, id, ps)
	for _, tc := range []struct {
		name string
		ps   []tsstore.Point
	}{
		{"other value", []tsstore.Point{pt("views", ls, Base, 1), pt("views", ls, Base+10, 3)}},
		{"a point fewer", []tsstore.Point{pt("views", ls, Base, 1)}},
		{"a point more", []tsstore.Point{pt("views", ls, Base, 1), pt("views", ls, Base+10, 2), pt("views", ls, Base+5, 2)}},
		{"a duplicate more", []tsstore.Point{pt("views", ls, Base, 1), pt("views", ls, Base+10, 2), pt("views", ls, Base+10, 2)}},
		{"other labels", []tsstore.Point{pt("views", labels(t, "merchant", "m2"), Base, 1), pt("views", ls, Base+10, 2)}},
		{"other metric", []tsstore.Point{pt("views", ls, Base, 1), pt("orders", ls, Base+10, 2)}},
	} {
		_, err := a.Append(context.Background(), id, tc.ps)
		if !errors.Is(err, tsstore.ErrConflict) {
			t.Errorf("%s: Append of the same name: got %v, want ErrConflict", tc.name, err)
		}
		if err != nil && !strings.Contains(err.Error(), id.Name()) {
			t.Errorf("%s: error %q does not name the segment", tc.name, err)
		}
	}
	if d := sameMultiset(ps, readAll(t, a, info.Name)); d != "" {
		t.Errorf("a conflicting append changed the segment (-want +got):\n%s", d)
	}
	segs, err := a.Segments(context.Background(), 0, tsstore.MaxTimestamp)
	if err != nil || len(segs) != 1 || segs[0] != info {
		t.Errorf("Segments after conflicts: %+v, %v; want just %+v", segs, err, info)
	}
}

func testInvalidAppend(t *testing.T, newArchive NewArchive) {
	a := open(t, newArchive)
	ls := labels(t, "merchant", "m1")
	good := pt("views", ls, Base, 1)
	okID := idOf("src", 1, 0, []tsstore.Point{good})
	withID := func(f func(*archive.SegmentID)) archive.SegmentID { id := okID; f(&id); return id }
	for _, tc := range []struct {
		name string
		id   archive.SegmentID
		ps   []tsstore.Point
		want string // in the error
	}{
		{"empty segment", okID, nil, okID.Name()},
		{"empty source", withID(func(id *archive.SegmentID) { id.Source = "" }), []tsstore.Point{good}, "source"},
		{"slash in source", withID(func(id *archive.SegmentID) { id.Source = "../x" }), []tsstore.Point{good}, "source"},
		{"long source", withID(func(id *archive.SegmentID) { id.Source = strings.Repeat("s", 65) }), []tsstore.Point{good}, "source"},
		{"negative shard", withID(func(id *archive.SegmentID) { id.Shard = -1 }), []tsstore.Point{good}, "shard"},
		{"max before min", withID(func(id *archive.SegmentID) { id.MaxTime = id.MinTime - 1 }), []tsstore.Point{good}, "range"},
		{"negative time", withID(func(id *archive.SegmentID) { id.MinTime = -1 }), []tsstore.Point{good}, "range"},
		{"point before MinTime", withID(func(id *archive.SegmentID) { id.MinTime = Base + 1; id.MaxTime = Base + 5 }), []tsstore.Point{good}, "point 0"},
		{"point after MaxTime", okID, []tsstore.Point{good, pt("views", ls, Base+1, 1)}, "point 1"},
		{"bad metric", okID, []tsstore.Point{good, pt("a-b", ls, Base, 1)}, "point 1"},
		{"NaN", okID, []tsstore.Point{good, pt("views", ls, Base, nan())}, "point 1"},
		{"unsorted labels", okID, []tsstore.Point{good, pt("views", tsstore.Labels{{Name: "z", Value: "1"}, {Name: "a", Value: "1"}}, Base, 1)}, "point 1"},
		{"empty label value", okID, []tsstore.Point{good, pt("views", tsstore.Labels{{Name: "a", Value: ""}}, Base, 1)}, "point 1"},
		{"reserved label", okID, []tsstore.Point{pt("views", tsstore.Labels{{Name: "__name__", Value: "x"}}, Base, 1)}, "point 0"},
	} {
		_, err := a.Append(context.Background(), tc.id, tc.ps)
		if !errors.Is(err, tsstore.ErrInvalid) {
			t.Errorf("%s: Append: got %v, want ErrInvalid", tc.name, err)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %q does not say %q", tc.name, err, tc.want)
		}
	}
	st, err := a.Stat(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st != (archive.Stats{}) {
		t.Errorf("rejected appends left something: %+v", st)
	}
	if got := scanAll(t, a, archive.ScanRequest{From: 0, To: tsstore.MaxTimestamp}); len(got) != 0 {
		t.Errorf("rejected appends left points: %v", got)
	}
	// The name of a rejected segment is still free.
	mustAppend(t, a, okID, []tsstore.Point{good})
}

func testInvalidRequests(t *testing.T, newArchive NewArchive) {
	a := open(t, newArchive)
	ctx := context.Background()
	ps := []tsstore.Point{pt("views", labels(t, "merchant", "m1"), Base, 1)}
	mustAppend(t, a, idOf("src", 1, 0, ps), ps)
	for _, tc := range []struct {
		name string
		r    archive.ScanRequest
	}{
		{"empty range", archive.ScanRequest{From: Base, To: Base}},
		{"reversed range", archive.ScanRequest{From: Base + 1, To: Base}},
		{"bad metric", archive.ScanRequest{From: Base, To: Base + 1, Metric: "a b"}},
		{"bad regexp", archive.ScanRequest{From: Base, To: Base + 1, Matchers: []tsstore.Matcher{{Type: tsstore.MatchRegexp, Name: "a", Value: "("}}}},
		{"matcher without name", archive.ScanRequest{From: Base, To: Base + 1, Matchers: []tsstore.Matcher{{Type: tsstore.MatchEqual, Value: "x"}}}},
	} {
		err := a.Scan(ctx, tc.r, func(tsstore.Point) error { return nil })
		if !errors.Is(err, tsstore.ErrInvalid) {
			t.Errorf("Scan %s: got %v, want ErrInvalid", tc.name, err)
		}
	}
	if _, err := a.Segments(ctx, Base, Base); !errors.Is(err, tsstore.ErrInvalid) {
		t.Errorf("Segments with an empty range: got %v, want ErrInvalid", err)
	}
	for _, name := range []string{"", "2026/01/01/00/nope-g0000000000000001-s0000-1-2.parquet", "../manifest", "/etc/passwd"} {
		err := a.Read(ctx, name, func(tsstore.Point) error { return nil })
		if !errors.Is(err, tsstore.ErrInvalid) || !errors.Is(err, archive.ErrNotFound) {
			t.Errorf("Read(%q): got %v, want ErrInvalid and archive.ErrNotFound", name, err)
		}
	}
}

func testCallbackError(t *testing.T, newArchive NewArchive) {
	a := open(t, newArchive)
	var ps []tsstore.Point
	for i := 0; i < 100; i++ {
		ps = append(ps, pt("views", labels(t, "merchant", "m1"), Base+int64(i), 1))
	}
	info := mustAppend(t, a, idOf("src", 1, 0, ps), ps)
	stop := errors.New("stop here")
	n := 0
	err := a.Read(context.Background(), info.Name, func(tsstore.Point) error { n++; return stop })
	if !errors.Is(err, stop) || n != 1 {
		t.Errorf("Read with a failing callback: %v after %d calls, want the callback's error after 1", err, n)
	}
	n = 0
	err = a.Scan(context.Background(), archive.ScanRequest{From: 0, To: tsstore.MaxTimestamp}, func(tsstore.Point) error { n++; return stop })
	if !errors.Is(err, stop) || n != 1 {
		t.Errorf("Scan with a failing callback: %v after %d calls, want the callback's error after 1", err, n)
	}
}

func testConcurrent(t *testing.T, newArchive NewArchive) {
	a := open(t, newArchive)
	const writers, segsPerWriter, pointsPerSeg = 4, 6, 200
	ctx := context.Background()
	segPoints := func(w, s int) []tsstore.Point {
		ls := labels(t, "merchant", fmt.Sprintf("m%d", w), "seg", fmt.Sprintf("%d-%d", w, s))
		var ps []tsstore.Point
		for i := 0; i < pointsPerSeg; i++ {
			ps = append(ps, pt("views", ls, Base+int64(s)*10*minute+int64(i)*1000, float64(i)))
		}
		return ps
	}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for s := 0; s < segsPerWriter; s++ {
				ps := segPoints(w, s)
				if _, err := a.Append(ctx, idOf("src", uint64(s), w, ps), ps); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	// Writers racing on one name with the same points all succeed with
	// the same info; a writer with other points for it gets a conflict
	// unless it won the race, in which case all the others do.
	race := segPoints(99, 0)
	raceID := idOf("race", 1, 0, race)
	other := slices.Clone(race)
	other[0].Value = -1
	infos := make(chan archive.SegmentInfo, 4)
	var otherWon, otherErr error
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			info, err := a.Append(ctx, raceID, shuffled(race, uint64(i)))
			if err != nil && !errors.Is(err, tsstore.ErrConflict) {
				errs <- err
				return
			}
			if err == nil {
				infos <- info
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, otherErr = a.Append(ctx, raceID, other)
		if otherErr == nil {
			otherWon = errors.New("won")
		}
	}()
	// Scanners: every scan sees whole segments, in time order.
	for r := 0; r < 2; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 5; i++ {
				perSeg := map[string]int{}
				var last int64
				err := a.Scan(ctx, archive.ScanRequest{From: 0, To: tsstore.MaxTimestamp, Metric: "views"}, func(p tsstore.Point) error {
					if p.Timestamp < last {
						return fmt.Errorf("scan went back in time: %d after %d", p.Timestamp, last)
					}
					last = p.Timestamp
					perSeg[p.Labels.Get("seg")]++
					return nil
				})
				if err != nil {
					errs <- err
					return
				}
				for seg, n := range perSeg {
					if n != pointsPerSeg {
						errs <- fmt.Errorf("a concurrent scan saw %d of the %d points of segment %s", n, pointsPerSeg, seg)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	close(infos)
	for err := range errs {
		t.Fatal(err)
	}
	var got []archive.SegmentInfo
	for info := range infos {
		got = append(got, info)
	}
	if otherWon != nil {
		if len(got) != 0 {
			t.Errorf("the other content won the race, yet %d appends of the first content succeeded", len(got))
		}
	} else {
		if !errors.Is(otherErr, tsstore.ErrConflict) {
			t.Errorf("the other content lost the race with %v, want ErrConflict", otherErr)
		}
		if len(got) != 4 {
			t.Errorf("%d of 4 appends of the same points succeeded, want all", len(got))
		}
		for _, info := range got[1:] {
			if info != got[0] {
				t.Errorf("appends of the same points returned different infos: %+v and %+v", got[0], info)
			}
		}
	}
	st, err := a.Stat(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(writers*segsPerWriter + 1); st.Segments != want || st.Points != want*pointsPerSeg {
		t.Errorf("after concurrent appends: %+v, want %d segments of %d points", st, want, pointsPerSeg)
	}
	if got := scanAll(t, a, archive.ScanRequest{From: 0, To: tsstore.MaxTimestamp}); len(got) != (writers*segsPerWriter+1)*pointsPerSeg {
		t.Errorf("Scan after concurrent appends: %d points, want %d", len(got), (writers*segsPerWriter+1)*pointsPerSeg)
	}
}

func testCancelled(t *testing.T, newArchive NewArchive) {
	a := open(t, newArchive)
	var ps []tsstore.Point
	for i := 0; i < 20000; i++ {
		ps = append(ps, pt("views", labels(t, "merchant", "m1"), Base+int64(i), 1))
	}
	id := idOf("src", 1, 0, ps)
	info := mustAppend(t, a, id, ps)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	ps2 := []tsstore.Point{pt("views", labels(t, "merchant", "m1"), Base, 1)}
	if _, err := a.Append(ctx, idOf("src", 2, 0, ps2), ps2); !errors.Is(err, context.Canceled) {
		t.Errorf("Append with a cancelled context: got %v, want context.Canceled", err)
	}
	if _, err := a.Segments(ctx, 0, tsstore.MaxTimestamp); !errors.Is(err, context.Canceled) {
		t.Errorf("Segments with a cancelled context: got %v, want context.Canceled", err)
	}
	if _, err := a.Stat(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Stat with a cancelled context: got %v, want context.Canceled", err)
	}
	noop := func(tsstore.Point) error { return nil }
	if err := a.Read(ctx, info.Name, noop); !errors.Is(err, context.Canceled) {
		t.Errorf("Read with a cancelled context: got %v, want context.Canceled", err)
	}
	if err := a.Scan(ctx, archive.ScanRequest{From: 0, To: tsstore.MaxTimestamp}, noop); !errors.Is(err, context.Canceled) {
		t.Errorf("Scan with a cancelled context: got %v, want context.Canceled", err)
	}
	// Cancelled in the middle.
	for _, which := range []string{"Read", "Scan"} {
		ctx, cancel := context.WithCancel(context.Background())
		n := 0
		fn := func(tsstore.Point) error {
			n++
			if n == 1 {
				cancel()
			}
			return nil
		}
		var err error
		if which == "Read" {
			err = a.Read(ctx, info.Name, fn)
		} else {
			err = a.Scan(ctx, archive.ScanRequest{From: 0, To: tsstore.MaxTimestamp}, fn)
		}
		if !errors.Is(err, context.Canceled) || n == len(ps) {
			t.Errorf("%s cancelled after the first point: %v after %d of %d points, want context.Canceled before the end", which, err, n, len(ps))
		}
		cancel()
	}
	if st, err := a.Stat(context.Background()); err != nil || st.Segments != 1 {
		t.Errorf("after cancelled calls: %+v, %v; want 1 segment", st, err)
	}
}

func testUseAfterClose(t *testing.T, newArchive NewArchive) {
	a := newArchive(t)
	ps := []tsstore.Point{pt("views", labels(t, "merchant", "m1"), Base, 1)}
	info := mustAppend(t, a, idOf("src", 1, 0, ps), ps)
	if err := a.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := a.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	ctx := context.Background()
	noop := func(tsstore.Point) error { return nil }
	if _, err := a.Append(ctx, idOf("src", 2, 0, ps), ps); !errors.Is(err, tsstore.ErrClosed) {
		t.Errorf("Append after Close: got %v, want ErrClosed", err)
	}
	if _, err := a.Segments(ctx, 0, tsstore.MaxTimestamp); !errors.Is(err, tsstore.ErrClosed) {
		t.Errorf("Segments after Close: got %v, want ErrClosed", err)
	}
	if err := a.Read(ctx, info.Name, noop); !errors.Is(err, tsstore.ErrClosed) {
		t.Errorf("Read after Close: got %v, want ErrClosed", err)
	}
	if err := a.Scan(ctx, archive.ScanRequest{From: 0, To: tsstore.MaxTimestamp}, noop); !errors.Is(err, tsstore.ErrClosed) {
		t.Errorf("Scan after Close: got %v, want ErrClosed", err)
	}
	if _, err := a.Stat(ctx); !errors.Is(err, tsstore.ErrClosed) {
		t.Errorf("Stat after Close: got %v, want ErrClosed", err)
	}
}

func nan() float64 {
	var zero float64
	return zero / zero
}

// columnsOf returns the columns of ps with a series entry of its own (a
// copy of its labels) for every point, and an entry no point has: series
// entries that repeat content, as a log read in chunks gives them.
func columnsOf(ps []tsstore.Point) *tsstore.Columns {
	c := &tsstore.Columns{Series: []tsstore.SeriesLabels{{Metric: "unused", Labels: tsstore.Labels{{Name: "x", Value: "1"}}}}}
	for _, p := range ps {
		c.IDs = append(c.IDs, int32(len(c.Series)))
		c.Series = append(c.Series, tsstore.SeriesLabels{Metric: p.Metric, Labels: slices.Clone(p.Labels)})
		c.Times = append(c.Times, p.Timestamp)
		c.Values = append(c.Values, p.Value)
	}
	return c
}

// columnsAppender returns a as an archive.ColumnsAppender, or skips the
// test when it is not one.
func columnsAppender(t *testing.T, a archive.Archive) archive.ColumnsAppender {
	t.Helper()
	ca, ok := a.(archive.ColumnsAppender)
	if !ok {
		t.Skipf("%T is not an archive.ColumnsAppender", a)
	}
	return ca
}

func testAppendColumns(t *testing.T, newArchive NewArchive) {
	byPoints, byColumns := open(t, newArchive), open(t, newArchive)
	ca := columnsAppender(t, byColumns)
	ls := labels(t, "merchant", "m1", "page", "/ü")
	var ps []tsstore.Point
	for i := range 300 {
		ps = append(ps, pt([]string{"views", "orders"}[i%2], labels(t, "merchant", fmt.Sprint("m", i%7), "v", AwkwardValues[i%len(AwkwardValues)]), Base+int64(i%40), float64(i%5)))
	}
	ps = append(ps, pt("views", ls, Base, 0), pt("views", ls, Base, -1/inf()), pt("views", ls, Base, 0), pt("nolabels", nil, Base+2, 1))
	id := idOf("src", 1, 0, ps)
	want := mustAppend(t, byPoints, id, shuffled(ps, 3))
	cols := columnsOf(shuffled(ps, 4))
	got, err := ca.AppendColumns(context.Background(), id, cols)
	if err != nil {
		t.Fatalf("AppendColumns(%s): %v", id.Name(), err)
	}
	// The caller may reuse the columns' memory once AppendColumns returns:
	// nothing of the segment may depend on it any more.
	for i := range cols.IDs {
		cols.IDs[i], cols.Times[i], cols.Values[i] = 0, Base+99, 12345
	}
	clear(cols.Series)
	got.Created = want.Created
	if d := gocmp.Diff(want, got); d != "" {
		t.Errorf("the columns of the points make another segment than the points (-points +columns):\n%s", d)
	}
	if d := sameMultiset(ps, readAll(t, byColumns, got.Name)); d != "" {
		t.Errorf("Read of the segment appended as columns (-want +got):\n%s", d)
	}
	// Again, as columns, into the archive that has the points: a no-op.
	again, err := columnsAppender(t, byPoints).AppendColumns(context.Background(), id, columnsOf(shuffled(ps, 5)))
	if err != nil || again != want {
		t.Errorf("AppendColumns of the stored points: %+v, %v; want the stored info %+v", again, err, want)
	}
	if st, err := byPoints.Stat(context.Background()); err != nil || st.Segments != 1 || st.Points != int64(len(ps)) {
		t.Errorf("after appending the same points as columns: %+v, %v; want one segment of %d points", st, err, len(ps))
	}
}

// inf returns +Inf (which no valid point holds: -1/inf() is -0).
func inf() float64 { return math.Inf(1) }

func testAppendColumnsConflict(t *testing.T, newArchive NewArchive) {
	a := open(t, newArchive)
	ca := columnsAppender(t, a)
	ls := labels(t, "merchant", "m1")
	ps := []tsstore.Point{pt("views", ls, Base, 1), pt("views", ls, Base+10, 2)}
	id := idOf("src", 1, 0, ps)
	info := mustAppend(t, a, id, ps)
	for _, other := range [][]tsstore.Point{
		{pt("views", ls, Base, 1), pt("views", ls, Base+10, 3)},
		{pt("views", ls, Base, 1), pt("views", ls, Base+10, 2), pt("views", ls, Base+10, 2)},
		{pt("views", labels(t, "merchant", "m2"), Base, 1), pt("views", ls, Base+10, 2)},
	} {
		_, err := ca.AppendColumns(context.Background(), id, columnsOf(other))
		if !errors.Is(err, tsstore.ErrConflict) || !strings.Contains(err.Error(), id.Name()) {
			t.Errorf("AppendColumns of other points under a stored name: got %v, want ErrConflict naming %s", err, id.Name())
		}
	}
	if d := sameMultiset(ps, readAll(t, a, info.Name)); d != "" {
		t.Errorf("a conflicting append changed the segment (-want +got):\n%s", d)
	}
}

func testInvalidAppendColumns(t *testing.T, newArchive NewArchive) {
	a := open(t, newArchive)
	ca := columnsAppender(t, a)
	ls := labels(t, "merchant", "m1")
	good := []tsstore.Point{pt("views", ls, Base, 1), pt("views", ls, Base+1, 2), pt("orders", ls, Base+2, 3)}
	id := idOf("src", 1, 0, good)
	for _, tc := range []struct {
		name  string
		id    archive.SegmentID
		spoil func(c *tsstore.Columns)
		want  string // in the error
	}{
		{"no points", id, func(c *tsstore.Columns) { c.IDs, c.Times, c.Values = nil, nil, nil }, id.Name()},
		{"negative series", id, func(c *tsstore.Columns) { c.IDs[1] = -1 }, "point 1"},
		{"series out of range", id, func(c *tsstore.Columns) { c.IDs[2] = int32(len(c.Series)) }, "point 2"},
		{"columns of other lengths", id, func(c *tsstore.Columns) { c.Values = c.Values[:2] }, "columns"},
		{"NaN", id, func(c *tsstore.Columns) { c.Values[1] = nan() }, "point 1"},
		{"infinite value", id, func(c *tsstore.Columns) { c.Values[2] = inf() }, "point 2"},
		{"bad metric", id, func(c *tsstore.Columns) { c.Series[c.IDs[1]].Metric = "a-b" }, "point 1"},
		{"unsorted labels", id, func(c *tsstore.Columns) {
			c.Series[c.IDs[2]].Labels = tsstore.Labels{{Name: "z", Value: "1"}, {Name: "a", Value: "1"}}
		}, "point 2"},
		{"empty label value", id, func(c *tsstore.Columns) { c.Series[c.IDs[0]].Labels = tsstore.Labels{{Name: "a"}} }, "point 0"},
		{"time after MaxTime", id, func(c *tsstore.Columns) { c.Times[1] = Base + 3 }, "point 1"},
		{"bad id", archive.SegmentID{Source: "../x", MaxTime: Base + 2}, func(*tsstore.Columns) {}, "source"},
	} {
		c := columnsOf(good)
		tc.spoil(c)
		_, err := ca.AppendColumns(context.Background(), tc.id, c)
		if !errors.Is(err, tsstore.ErrInvalid) {
			t.Errorf("%s: AppendColumns: got %v, want ErrInvalid", tc.name, err)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %q does not say %q", tc.name, err, tc.want)
		}
	}
	if st, err := a.Stat(context.Background()); err != nil || st != (archive.Stats{}) {
		t.Errorf("rejected appends left something: %+v, %v", st, err)
	}
	if got := scanAll(t, a, archive.ScanRequest{From: 0, To: tsstore.MaxTimestamp}); len(got) != 0 {
		t.Errorf("rejected appends left points: %v", got)
	}
	// The name of a rejected segment is still free.
	if _, err := ca.AppendColumns(context.Background(), id, columnsOf(good)); err != nil {
		t.Errorf("AppendColumns of the good points after rejected ones: %v", err)
	}
}
