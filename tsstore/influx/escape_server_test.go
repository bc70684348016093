package influx_test

import (
	"context"
	"regexp"
	"testing"
	"time"

	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/tsstore/influx"
	"github.com/hourglass-io/hourglass/tsstore/storetest"
)

// TestAwkwardValuesOnServer writes label values that need escaping or
// encoding, under label names InfluxDB reserves, and selects each through
// the real server with =, a regexp (QuoteMeta) and !=, at the cell width
// (store aggregates) and at twice it (InfluxDB aggregates).
func TestAwkwardValuesOnServer(t *testing.T) {
	s := openStore(t, influx.Options{WriteAPI: influx.WriteV1})
	values := []string{"a b", "a,b", "a=b", `a"b`, `a\b`, "a'b", "ünïcødé ✓", "tab\there", "new\nline", `trailing\`, `\`,
		"%%hg:x", "100%", "/sl/ash/", "${x}", " lead", "trail ", "a.b*c+?", "(paren", "#hash", "=", ",", "\x7f"}
	var cells []tsstore.Cell
	for i, v := range values {
		for _, name := range []string{"v", "time", "count"} {
			ls, err := tsstore.NewLabels("merchant", "m1", name, v)
			if err != nil {
				t.Fatal(err)
			}
			cells = append(cells, tsstore.Cell{Metric: "awkward", Labels: ls, Start: storetest.Base, Agg: tsstore.AggOf(float64(i))})
		}
	}
	if err := s.Write(context.Background(), cells); err != nil {
		t.Fatal(err)
	}
	for _, c := range cells {
		name, v := c.Labels[0].Name, c.Labels[0].Value
		if name == "merchant" {
			name, v = c.Labels[1].Name, c.Labels[1].Value
		}
		for _, m := range []tsstore.Matcher{
			{Type: tsstore.MatchEqual, Name: name, Value: v},
			{Type: tsstore.MatchRegexp, Name: name, Value: regexp.QuoteMeta(v)},
		} {
			if err := m.Compile(); err != nil {
				t.Fatal(err)
			}
			for _, step := range []time.Duration{time.Minute, 2 * time.Minute} {
				r, err := s.Query(context.Background(), tsstore.Query{Metric: "awkward", Matchers: []tsstore.Matcher{m}, From: storetest.Base, To: storetest.Base + 120000, Step: step})
				if err != nil {
					t.Fatalf("%s step %v: %v", m, step, err)
				}
				if len(r.Series) != 1 || !r.Series[0].Labels.Equal(c.Labels) || r.Series[0].Buckets[0].Agg != c.Agg {
					t.Errorf("%s step %v: got %+v, want only %v with %+v", m, step, r.Series, c.Labels, c.Agg)
				}
			}
		}
		ne := tsstore.Matcher{Type: tsstore.MatchNotEqual, Name: name, Value: v}
		got, err := s.Cells(context.Background(), tsstore.Selector{Metric: "awkward", Matchers: []tsstore.Matcher{ne}, From: storetest.Base, To: storetest.Base + 1})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(cells)-1 {
			t.Errorf("%s: %d cells, want %d", ne, len(got), len(cells)-1)
		}
	}
}
