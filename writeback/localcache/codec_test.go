package localcache

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/hourglass-io/hourglass/tsstore"
)

// genSeries draws the series a test's batches are made of: metrics and
// label sets, some empty, some equal in content but apart in memory.
func genSeries(t *rapid.T) []tsstore.SeriesLabels {
	// Up to 8 metrics: a label set may have more series than a decoder's
	// labelSet holds.
	metrics := []string{"views", "ms", strings.Repeat("m", 70), "views"[:4], "a", "b", "c", "d"}
	values := []string{"", "m1", "m2", "/a", strings.Repeat("v", 100)}
	n := rapid.IntRange(1, 40).Draw(t, "series")
	out := make([]tsstore.SeriesLabels, n)
	for i := range out {
		s := tsstore.SeriesLabels{Metric: rapid.SampledFrom(metrics).Draw(t, "metric")}
		if i > 0 && rapid.IntRange(0, 2).Draw(t, "shareLabels") == 0 {
			s.Labels = out[rapid.IntRange(0, i-1).Draw(t, "from")].Labels
		} else {
			for j := range rapid.IntRange(0, 3).Draw(t, "labels") {
				v := strings.Clone(rapid.SampledFrom(values).Draw(t, "value"))
				s.Labels = append(s.Labels, tsstore.Label{Name: string(rune('a' + j)), Value: v})
			}
		}
		out[i] = s
	}
	return out
}

// genValue draws values of every kind the record encodes apart.
func genValue(t *rapid.T) float64 {
	return rapid.OneOf(
		rapid.Just(1.0), rapid.Just(0.0), rapid.Just(math.Copysign(0, -1)),
		rapid.Just(math.NaN()), rapid.Just(math.Inf(-1)), rapid.Just(1<<53+0.0), rapid.Just(-(1<<53)-2.0),
		rapid.Map(rapid.Int64Range(-5000, 5000), func(i int64) float64 { return float64(i) }),
		rapid.Float64(),
	).Draw(t, "v")
}

func genPoints(t *rapid.T, series []tsstore.SeriesLabels, name string) []tsstore.Point {
	n := rapid.IntRange(1, 60).Draw(t, name)
	ps := make([]tsstore.Point, n)
	for i := range ps {
		s := rapid.SampledFrom(series).Draw(t, "s")
		ts := rapid.OneOf(rapid.Int64Range(1_700_000_000_000, 1_700_000_100_000), rapid.Int64()).Draw(t, "ts")
		ps[i] = tsstore.Point{Metric: s.Metric, Labels: s.Labels, Timestamp: ts, Value: genValue(t)}
	}
	return ps
}

// sectionPoints returns the points of a decoded section.
func sectionPoints(d *decoder, s *section) []tsstore.Point {
	out := make([]tsstore.Point, s.len())
	for i := range out {
		sl := d.series[s.series[s.ids[i]]]
		out[i] = tsstore.Point{Metric: sl.Metric, Labels: sl.Labels, Timestamp: s.times[i], Value: s.values[i]}
	}
	return out
}

// samePoints compares points exactly (values by their bits).
func samePoints(a, b []tsstore.Point) bool {
	return slices.EqualFunc(a, b, func(p, q tsstore.Point) bool {
		return p.Metric == q.Metric && p.Labels.Equal(q.Labels) && p.Timestamp == q.Timestamp &&
			math.Float64bits(p.Value) == math.Float64bits(q.Value)
	})
}

// TestRecordRoundTrip encodes batches in both record versions and decodes
// them with one decoder, as replay does: each record gives back its raw
// and processed points, every strict prefix of a record fails, and the
// decoder makes each series once.
func TestRecordRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		series := genSeries(t)
		d := newDecoder()
		g, gp, e := newGrouper(), newGrouper(), newEncoder()
		v1 := false
		for range rapid.IntRange(1, 5).Draw(t, "records") {
			raw := genPoints(t, series, "raw")
			var processed []tsstore.Point
			if rapid.Bool().Draw(t, "differ") {
				processed = genPoints(t, series, "processed")
			}
			width := time.Duration(rapid.IntRange(1, 3600).Draw(t, "width")) * time.Second
			var payload []byte
			if rapid.Bool().Draw(t, "v1") {
				v1 = true
				payload = encodeV1(nil, width, raw, processed)
			} else {
				var pg *grouper
				if processed != nil {
					gp.group(processed)
					pg = gp
				}
				g.group(raw)
				payload = e.batch(nil, width, g, pg)
			}
			if err := d.record(payload, true); err != nil {
				t.Fatalf("decode: %v", err)
			}
			if d.width != width {
				t.Fatalf("width %v, want %v", d.width, width)
			}
			if got := sectionPoints(d, &d.raw); !samePoints(got, raw) {
				t.Fatalf("raw points:\n%v\nwant\n%v", got, raw)
			}
			want := processed
			if want == nil {
				want = raw
			}
			if got := sectionPoints(d, d.processedSection()); !samePoints(got, want) {
				t.Fatalf("processed points:\n%v\nwant\n%v", got, want)
			}
			cut := rapid.IntRange(0, len(payload)-1).Draw(t, "cut")
			if err := newDecoder().record(payload[:cut], true); !errors.Is(err, errCorrupt) {
				t.Fatalf("a record cut to %d of %d bytes: %v, want errCorrupt", cut, len(payload), err)
			}
		}
		if !v1 { // version 1 records may repeat a series (a metric over 64 bytes)
			for i, a := range d.series {
				for j, b := range d.series[:i] {
					if a.Metric == b.Metric && a.Labels.Equal(b.Labels) {
						t.Fatalf("series %d and %d are both %s%v", j, i, a.Metric, a.Labels)
					}
				}
			}
		}
	})
}

func TestRecordOfAnotherVersion(t *testing.T) {
	payload := []byte{0, recordVersion + 1, 60}
	if err := newDecoder().record(payload, true); !errors.Is(err, errVersion) || errors.Is(err, errCorrupt) {
		t.Errorf("a record of version %d: %v, want errVersion and not errCorrupt", recordVersion+1, err)
	}
}

// A record whose checksum holds but whose label set claims more labels than
// tsstore.MaxLabels is corrupt, and the decoder stops there rather than
// reading that many label strings.
func TestRecordWithTooManyLabels(t *testing.T) {
	payload := []byte{0, recordVersion, 60, 1, 1, 'a', 1}
	payload = binary.AppendUvarint(payload, 1<<20)
	d := newDecoder()
	if err := d.record(payload, true); !errors.Is(err, errCorrupt) {
		t.Fatalf("a label set of 2^20 labels: %v, want errCorrupt", err)
	}
	if len(d.key) > 2*tsstore.MaxLabels+1 {
		t.Errorf("the decoder read %d label strings before failing", len(d.key)-1)
	}
}

// TestRecordIsCompact pins the size of a version 2 record of issue 19's
// workload, against version 1.
func TestRecordIsCompact(t *testing.T) {
	b := issueBatch(nil, issueSets())
	v1 := encodeV1(nil, time.Minute, b, nil)
	v2 := encodeV2(time.Minute, b)
	if per := float64(len(v2)) / float64(len(b)); per > 16 {
		t.Errorf("a version 2 record takes %.1f bytes per point (version 1: %.1f), want at most 16", per, float64(len(v1))/float64(len(b)))
	}
}

// TestSharedAcrossRecords checks that a decoder makes a series repeated
// by records once: same metric string and label slice.
func TestSharedAcrossRecords(t *testing.T) {
	ls := tsstore.Labels{{Name: "merchant", Value: "m1"}}
	ps := []tsstore.Point{{Metric: "views", Labels: ls, Timestamp: 1, Value: 1}}
	d := newDecoder()
	var seen []tsstore.SeriesLabels
	for _, payload := range [][]byte{
		encodeV2(time.Minute, ps),
		encodeV2(time.Minute, slices.Clone(ps)),
		encodeV1(nil, time.Minute, ps, nil),
	} {
		if err := d.record(payload, false); err != nil {
			t.Fatal(err)
		}
		seen = append(seen, d.series[d.raw.series[0]])
	}
	if &seen[0].Labels[0] != &seen[1].Labels[0] {
		t.Errorf("two version 2 records of one series gave two label slices")
	}
}

// TestSetsFoundAfterGrowth checks that a decoder whose table of label
// sets grew (and placed its sets again by hashKey) finds every set a
// record repeats, as it hashes them while reading: reading a log's
// records again makes no set or series.
func TestSetsFoundAfterGrowth(t *testing.T) {
	sets := issueSets()
	r := rand.New(rand.NewPCG(1, 2))
	var payloads [][]byte
	for range 8 {
		payloads = append(payloads, encodeV2(time.Minute, issueBatch(r, sets)))
	}
	d := newDecoder()
	var made [2][2]int // sets and series, after each reading
	for i := range made {
		for _, p := range payloads {
			if err := d.rawRecord(p); err != nil {
				t.Fatal(err)
			}
		}
		made[i] = [2]int{len(d.sets), len(d.series)}
	}
	if len(d.setIDs.slots) <= 1024 {
		t.Fatalf("the table of %d sets did not grow", len(d.sets))
	}
	if made[1] != made[0] || made[0][0] > len(sets) {
		t.Errorf("the records of at most %d label sets made %v sets and series, then %v reading them again", len(sets), made[0], made[1])
	}
}

// encodeV2 returns the payload of a batch record of raw, whose processed
// points are the raw ones.
func encodeV2(width time.Duration, raw []tsstore.Point) []byte {
	g := newGrouper()
	g.group(raw)
	return newEncoder().batch(nil, width, g, nil)
}

// TestWideLines groups and round-trips lines of many fields (more series
// per label slice than a grouper scans, or a decoder's labelSet holds),
// in a different field order on each line.
func TestWideLines(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		fields := rapid.IntRange(1, 3*maxScan).Draw(t, "fields")
		metrics := make([]string, fields)
		for i := range metrics {
			metrics[i] = fmt.Sprintf("f%d", i)
		}
		sets := []tsstore.Labels{{{Name: "a", Value: "1"}}, nil, {{Name: "a", Value: "2"}}}
		var ps []tsstore.Point
		for range rapid.IntRange(1, 6).Draw(t, "lines") {
			ls := rapid.SampledFrom(sets).Draw(t, "set")
			order := rapid.Permutation(seq(fields)).Draw(t, "order")
			for _, i := range order[:rapid.IntRange(1, fields).Draw(t, "some")] {
				ps = append(ps, tsstore.Point{Metric: metrics[i], Labels: ls, Timestamp: int64(len(ps)), Value: float64(i)})
			}
		}
		g := newGrouper()
		cols := g.group(ps)
		if err := cols.Check(); err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for _, s := range cols.Series {
			k := s.Metric + s.Labels.String()
			if seen[k] {
				t.Fatalf("series %s twice", k)
			}
			seen[k] = true
		}
		if got := cols.AppendPoints(nil); !samePoints(got, ps) {
			t.Fatalf("grouped:\n%v\nwant\n%v", got, ps)
		}
		d := newDecoder()
		payload := newEncoder().batch(nil, time.Minute, g, nil)
		for range 2 { // the second time, every series is known
			if err := d.record(payload, true); err != nil {
				t.Fatal(err)
			}
			if got := sectionPoints(d, &d.raw); !samePoints(got, ps) {
				t.Fatalf("decoded:\n%v\nwant\n%v", got, ps)
			}
			if len(d.series) != len(cols.Series) {
				t.Fatalf("decoded %d series, want %d", len(d.series), len(cols.Series))
			}
		}
	})
}

func seq(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}
