package promapi

import (
	"testing"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/hourglass-io/hourglass/tsstore"
)

func TestMatchTypes(t *testing.T) {
	for _, c := range []struct {
		p labels.MatchType
		s tsstore.MatchType
	}{
		{labels.MatchEqual, tsstore.MatchEqual},
		{labels.MatchNotEqual, tsstore.MatchNotEqual},
		{labels.MatchRegexp, tsstore.MatchRegexp},
		{labels.MatchNotRegexp, tsstore.MatchNotRegexp},
	} {
		if tsstore.MatchType(c.p) != c.s || c.p.String() != c.s.String() {
			t.Errorf("labels.%v is tsstore.%v", c.p, tsstore.MatchType(c.p))
		}
	}
}

func TestSplitSeriesName(t *testing.T) {
	for name, want := range map[string]string{
		"revenue:sum": "revenue/1", "a:b:max": "a:b/3", "revenue": "", ":sum": "", "revenue:avg": "", "revenue:": "",
	} {
		m, f, ok := splitSeriesName(name)
		got := ""
		if ok {
			got = m + "/" + string(rune('0'+f))
		}
		if got != want {
			t.Errorf("splitSeriesName(%q) = %q, want %q", name, got, want)
		}
	}
}
