package main

import (
	"slices"
	"time"
)

// latencies collects one operation's outcomes. Not safe for concurrent use:
// each worker has its own, merged at the end.
type latencies struct {
	ok     []time.Duration
	errors map[string]int // by status or error
	events int
}

func (l *latencies) merge(o *latencies) {
	l.ok = append(l.ok, o.ok...)
	l.events += o.events
	for k, v := range o.errors {
		if l.errors == nil {
			l.errors = map[string]int{}
		}
		l.errors[k] += v
	}
}

func (l *latencies) fail(why string) {
	if l.errors == nil {
		l.errors = map[string]int{}
	}
	l.errors[why]++
}

// percentile returns the q-quantile (0..1) of the successful latencies,
// nearest rank.
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// summary is one line of the report.
type summary struct {
	count            int
	perSecond        float64
	p50, p99, maxLat time.Duration
}

func (l *latencies) summarize(elapsed time.Duration) summary {
	s := slices.Clone(l.ok)
	slices.Sort(s)
	out := summary{count: len(s), perSecond: float64(len(s)) / elapsed.Seconds(), p50: percentile(s, 0.50), p99: percentile(s, 0.99)}
	if len(s) > 0 {
		out.maxLat = s[len(s)-1]
	}
	return out
}
