package promstats_test

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/hourglass-io/hourglass/internal/promstats"
)

type stats struct {
	Done int
	Up   bool
}

func TestCollector(t *testing.T) {
	n := 0
	c := &promstats.Collector[stats]{
		Snapshot: func() stats { n++; return stats{Done: 7 * n, Up: true} },
		Metrics: []promstats.Metric[stats]{
			promstats.Counter("demo_done_total", "Things done.", func(s *stats) float64 { return float64(s.Done) }),
			promstats.Gauge("demo_up", "1 while up.", func(s *stats) float64 { return promstats.Bool(s.Up) }),
		},
	}
	want := `
# HELP demo_done_total Things done.
# TYPE demo_done_total counter
demo_done_total 7
# HELP demo_up 1 while up.
# TYPE demo_up gauge
demo_up 1
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want)); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("one scrape took %d snapshots, want 1", n)
	}
	if problems, err := testutil.CollectAndLint(c); err != nil || len(problems) != 0 {
		t.Fatalf("lint: %v %v", problems, err)
	}
}
