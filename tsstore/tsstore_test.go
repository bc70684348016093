package tsstore_test

import (
	"errors"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/hourglass-io/hourglass/tsstore"
)

func TestNewLabelsSortsAndValidates(t *testing.T) {
	ls, err := tsstore.NewLabels("page", "/", "merchant", "m1")
	if err != nil {
		t.Fatal(err)
	}
	if ls.String() != `{merchant="m1", page="/"}` {
		t.Errorf("String = %s", ls)
	}
	for _, tc := range []struct {
		kv   []string
		want string
	}{
		{[]string{"a"}, "odd number"},
		{[]string{"a", "1", "a", "2"}, "duplicate label name"},
		{[]string{"1a", "x"}, `label name "1a"`},
		{[]string{"a-b", "x"}, `label name "a-b"`},
		{[]string{"__name__", "x"}, "reserved"},
		{[]string{"a", ""}, "empty value"},
		{[]string{"a", "\xff"}, "not valid UTF-8"},
		{[]string{"a", strings.Repeat("x", tsstore.MaxValueLen+1)}, "longer than"},
	} {
		_, err := tsstore.NewLabels(tc.kv...)
		if !errors.Is(err, tsstore.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("NewLabels(%q) = %v; want ErrInvalid saying %q", tc.kv, err, tc.want)
		}
	}
	many := make([]string, 0, 2*(tsstore.MaxLabels+1))
	for i := 0; i <= tsstore.MaxLabels; i++ {
		many = append(many, "l"+strings.Repeat("x", i), "v")
	}
	if _, err := tsstore.NewLabels(many...); !errors.Is(err, tsstore.ErrInvalid) {
		t.Errorf("%d labels accepted", tsstore.MaxLabels+1)
	}
	unsorted := tsstore.Labels{{Name: "b", Value: "1"}, {Name: "a", Value: "1"}}
	if err := unsorted.Validate(); err == nil || !strings.Contains(err.Error(), "not sorted") {
		t.Errorf("unsorted labels: %v", err)
	}
}

func TestLabelsHashAndKeyAreStable(t *testing.T) {
	a, _ := tsstore.NewLabels("merchant", "m1", "page", "/")
	b, _ := tsstore.FromMap(map[string]string{"page": "/", "merchant": "m1"})
	if a.Hash() != b.Hash() || a.Key() != b.Key() || !a.Equal(b) || a.Compare(b) != 0 {
		t.Error("equal label sets differ in hash, key or comparison")
	}
	// The hash must not change between versions: cache shards and keys
	// depend on it.
	if got := a.Hash(); got != 0x1aca416a3482ec73 {
		t.Errorf("Hash = %#x, want 0x1aca416a3482ec73 as in every earlier version", got)
	}
	c, _ := tsstore.NewLabels("merchant", "m1", "page", "/x")
	if a.Key() == c.Key() || a.Compare(c) >= 0 || c.Compare(a) <= 0 || a.Hash() == c.Hash() {
		t.Error("different label sets compare equal")
	}
	if a.Get("page") != "/" || a.Get("nope") != "" || !a.Has("merchant") || a.Has("nope") {
		t.Error("Get/Has")
	}
}

func TestLabelsPropertyCompareKey(t *testing.T) {
	gen := rapid.Custom(func(t *rapid.T) tsstore.Labels {
		m := rapid.MapOfN(rapid.SampledFrom([]string{"a", "b", "merchant", "page"}), rapid.StringMatching(`[a-z/ ,=]{1,5}`), 0, 4).Draw(t, "m")
		ls, err := tsstore.FromMap(m)
		if err != nil {
			t.Fatal(err)
		}
		return ls
	})
	rapid.Check(t, func(t *rapid.T) {
		a, b := gen.Draw(t, "a"), gen.Draw(t, "b")
		if (a.Key() == b.Key()) != a.Equal(b) || (a.Compare(b) == 0) != a.Equal(b) || a.Compare(b) != -b.Compare(a) {
			t.Fatalf("Key/Equal/Compare disagree for %s and %s", a, b)
		}
		if a.Equal(b) && a.Hash() != b.Hash() {
			t.Fatalf("equal sets with different hashes")
		}
	})
}

func TestPointValidate(t *testing.T) {
	ls, _ := tsstore.NewLabels("merchant", "m1")
	ok := tsstore.Point{Metric: "revenue", Labels: ls, Timestamp: 1, Value: 2}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		p    tsstore.Point
		want string
	}{
		{"NaN", tsstore.Point{Metric: "r", Labels: ls, Value: math.NaN()}, "not a finite number"},
		{"Inf", tsstore.Point{Metric: "r", Labels: ls, Value: math.Inf(-1)}, "not a finite number"},
		{"empty metric", tsstore.Point{Labels: ls}, "metric name is empty"},
		{"metric starting with a digit", tsstore.Point{Metric: "1r", Labels: ls}, `metric name "1r"`},
		{"negative time", tsstore.Point{Metric: "r", Labels: ls, Timestamp: -1}, "timestamp -1"},
		{"year 3000", tsstore.Point{Metric: "r", Labels: ls, Timestamp: tsstore.MaxTimestamp}, "year 3000"},
	} {
		err := tsstore.ValidatePoints([]tsstore.Point{ok, tc.p})
		if !errors.Is(err, tsstore.ErrInvalid) || !strings.Contains(err.Error(), "point 1") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v; want ErrInvalid naming point 1 and saying %q", tc.name, err, tc.want)
		}
	}
}

func TestAggMergeIsAssociativeAndCommutative(t *testing.T) {
	genAgg := rapid.Custom(func(t *rapid.T) tsstore.Agg {
		var a tsstore.Agg
		for _, v := range rapid.SliceOfN(rapid.IntRange(-1e6, 1e6), 0, 5).Draw(t, "v") {
			a.Add(float64(v))
		}
		return a
	})
	rapid.Check(t, func(t *rapid.T) {
		a, b, c := genAgg.Draw(t, "a"), genAgg.Draw(t, "b"), genAgg.Draw(t, "c")
		ab := a
		ab.Merge(b)
		ba := b
		ba.Merge(a)
		if ab != ba {
			t.Fatalf("a+b = %+v, b+a = %+v", ab, ba)
		}
		abc := ab
		abc.Merge(c)
		bc := b
		bc.Merge(c)
		a_bc := a
		a_bc.Merge(bc)
		if abc != a_bc {
			t.Fatalf("(a+b)+c = %+v, a+(b+c) = %+v", abc, a_bc)
		}
	})
	if m := (tsstore.Agg{}).Mean(); !math.IsNaN(m) {
		t.Errorf("mean of nothing = %v, want NaN", m)
	}
	a := tsstore.AggOf(3)
	a.Add(5)
	if a.Mean() != 4 || a.Min != 3 || a.Max != 5 || a.Count != 2 {
		t.Errorf("Agg = %+v", a)
	}
}

func TestMatchers(t *testing.T) {
	for _, tc := range []struct {
		t       tsstore.MatchType
		v, in   string
		matches bool
	}{
		{tsstore.MatchEqual, "a", "a", true},
		{tsstore.MatchEqual, "", "", true},
		{tsstore.MatchNotEqual, "a", "", true},
		{tsstore.MatchRegexp, "a|b", "b", true},
		{tsstore.MatchRegexp, "a", "ab", false}, // anchored
		{tsstore.MatchRegexp, ".*", "", true},
		{tsstore.MatchRegexp, "a.b", "a\nb", true},
		{tsstore.MatchNotRegexp, "m.*", "x", true},
		{tsstore.MatchNotRegexp, "m.*", "m1", false},
	} {
		m, err := tsstore.NewMatcher(tc.t, "x", tc.v)
		if err != nil {
			t.Fatal(err)
		}
		if m.Matches(tc.in) != tc.matches {
			t.Errorf("%s matches %q = %v, want %v", m, tc.in, !tc.matches, tc.matches)
		}
	}
	if _, err := tsstore.NewMatcher(tsstore.MatchRegexp, "x", "("); !errors.Is(err, tsstore.ErrInvalid) {
		t.Errorf("bad regexp: %v", err)
	}
	if _, err := tsstore.NewMatcher(tsstore.MatchType(9), "x", ""); !errors.Is(err, tsstore.ErrInvalid) {
		t.Errorf("bad type: %v", err)
	}
}

// TestValidateDoesNotWriteSharedMatchers validates one query with an
// uncompiled regexp literal from many goroutines (run with -race).
func TestValidateDoesNotWriteSharedMatchers(t *testing.T) {
	ms := []tsstore.Matcher{{Type: tsstore.MatchRegexp, Name: "merchant", Value: "m.*"}}
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			q := tsstore.Query{Metric: "v", Matchers: ms, From: 0, To: 60_000, Step: time.Minute}
			if err := q.Validate(time.Minute); err != nil {
				t.Error(err)
			}
			if !tsstore.MatchLabels(q.Matchers, tsstore.Labels{{Name: "merchant", Value: "m1"}}) {
				t.Error("compiled copy does not match")
			}
		}()
	}
	wg.Wait()
}

func TestErrorKinds(t *testing.T) {
	cause := errors.New("connection refused")
	err := tsstore.Errorf(tsstore.ErrUnavailable, "influx: write: %w", cause)
	if !errors.Is(err, tsstore.ErrUnavailable) || !errors.Is(err, cause) || errors.Is(err, tsstore.ErrInvalid) {
		t.Errorf("Errorf kinds wrong: %v", err)
	}
	if !tsstore.IsRetryable(err) || tsstore.IsRetryable(tsstore.Errorf(tsstore.ErrInvalid, "x")) || tsstore.IsRetryable(nil) {
		t.Error("IsRetryable")
	}
	if err.Error() != "influx: write: connection refused (unavailable)" {
		t.Errorf("message %q", err)
	}
}

func TestCellValidateAndBuckets(t *testing.T) {
	if got := tsstore.CellStart(125_000, time.Minute); got != 120_000 {
		t.Errorf("CellStart = %d", got)
	}
	// Buckets are aligned to From: [30000, 150000), [150000, 270000), ...
	q := tsstore.Query{Metric: "v", From: 30_000, To: 400_000, Step: 2 * time.Minute}
	for in, want := range map[int64]int64{30_000: 30_000, 149_999: 30_000, 150_000: 150_000, 399_999: 390_000} {
		if got := q.BucketStart(in); got != want {
			t.Errorf("BucketStart(%d) = %d, want %d", in, got, want)
		}
	}
	ls, _ := tsstore.NewLabels("merchant", "m1")
	c := tsstore.Cell{Metric: "v", Labels: ls, Start: 60_000, Seq: 59_999, Agg: tsstore.AggOf(1)}
	if err := c.Validate(time.Minute); err != nil {
		t.Errorf("largest Seq rejected: %v", err)
	}
	c.Seq = 60_000
	if err := c.Validate(time.Minute); !errors.Is(err, tsstore.ErrInvalid) {
		t.Errorf("Seq = width accepted: %v", err)
	}
}

// TestCellIDString: a cell's name in errors shows its whole identity, the
// writer only when it is not the legacy one.
func TestCellIDString(t *testing.T) {
	c := tsstore.Cell{Metric: "views", Labels: tsstore.Labels{{Name: "merchant", Value: "m1"}}, Start: 60000, Seq: 2}
	if got, want := c.IDString(), `views{merchant="m1"}@60000 seq 2`; got != want {
		t.Errorf("legacy writer: %s, want %s", got, want)
	}
	c.Writer = "w1"
	if got, want := c.IDString(), `views{merchant="m1"}@60000 writer "w1" seq 2`; got != want {
		t.Errorf("writer w1: %s, want %s", got, want)
	}
}
