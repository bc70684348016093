package promtsdb

import (
	"context"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"

	"github.com/hourglass-io/hourglass/tsstore"
)

// nameMatcher selects the four series of metric.
func nameMatcher(metric string) *labels.Matcher {
	alts := make([]string, numComps)
	for k := range alts {
		alts[k] = regexp.QuoteMeta(seriesName(metric, k))
	}
	return labels.MustNewMatcher(labels.MatchRegexp, nameLabel, strings.Join(alts, "|"))
}

// componentOf returns the component of the series named name of metric,
// or -1.
func componentOf(name, metric string) int {
	if !strings.HasPrefix(name, metric) {
		return -1
	}
	for k, suf := range componentSuffix {
		if name[len(metric):] == suf {
			return k
		}
	}
	return -1
}

var matchTypes = map[tsstore.MatchType]labels.MatchType{
	tsstore.MatchEqual:     labels.MatchEqual,
	tsstore.MatchNotEqual:  labels.MatchNotEqual,
	tsstore.MatchRegexp:    labels.MatchRegexp,
	tsstore.MatchNotRegexp: labels.MatchNotRegexp,
}

// selectMatchers translates a selector's matchers (validated) for the
// TSDB's index. A matcher on tsstore.WriterLabel sees "", as on any label
// a cell does not have (the writer is not a label of the results): one
// that matches "" is left out, and for one that does not, none is false.
func selectMatchers(metric string, ms []tsstore.Matcher) (out []*labels.Matcher, none bool, err error) {
	out = make([]*labels.Matcher, 0, len(ms)+1)
	out = append(out, nameMatcher(metric))
	for _, m := range ms {
		if m.Name == writerLabel {
			if !m.Matches("") {
				return nil, true, nil
			}
			continue
		}
		t, ok := matchTypes[m.Type]
		if !ok {
			return nil, false, tsstore.Errorf(tsstore.ErrInvalid, "matcher on %q: unknown match type %d", m.Name, int(m.Type))
		}
		lm, err := labels.NewMatcher(t, m.Name, m.Value)
		if err != nil {
			return nil, false, tsstore.Errorf(tsstore.ErrInvalid, "matcher %s: %w", m, err)
		}
		out = append(out, lm)
	}
	return out, false, nil
}

// selectCells runs sel's selection for samples of cells with Start in
// [From, To) and calls fn for every series of the four components. The
// caller holds closeMu for reading.
func (s *Store) selectCells(ctx context.Context, sel tsstore.Selector, fn func(k int, lset labels.Labels, series storage.Series) error) error {
	ms, none, err := selectMatchers(sel.Metric, sel.Matchers)
	if err != nil || none {
		return err
	}
	// A cell starting at To-1 has its last partial at To-1+width-1.
	mint, maxt := sel.From, sel.To+s.widthMs-2
	q, err := s.db.Querier(mint, maxt)
	if err != nil {
		return tsstore.Errorf(tsstore.ErrUnavailable, "querier: %w", err)
	}
	defer q.Close()
	set := q.Select(ctx, false, &storage.SelectHints{Start: mint, End: maxt}, ms...)
	for set.Next() {
		if err := ctx.Err(); err != nil {
			return err
		}
		series := set.At()
		lset := series.Labels()
		k := componentOf(lset.Get(nameLabel), sel.Metric)
		if k < 0 {
			continue
		}
		if err := fn(k, lset, series); err != nil {
			return err
		}
	}
	if err := set.Err(); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return tsstore.Errorf(tsstore.ErrUnavailable, "select: %w", err)
	}
	return nil
}

// cellLabels returns the labels of a TSDB series without __name__ and
// __writer__, with their strings copied, keeping those named in by when by
// is not nil.
func cellLabels(lset labels.Labels, by []string) tsstore.Labels {
	out := make(tsstore.Labels, 0, lset.Len())
	lset.Range(func(l labels.Label) {
		if l.Name == nameLabel || l.Name == writerLabel || (by != nil && !slices.Contains(by, l.Name)) {
			return
		}
		out = append(out, tsstore.Label{Name: strings.Clone(l.Name), Value: strings.Clone(l.Value)})
	})
	return out
}

// Query answers q with tsstore.Aggregate's semantics, on the TSDB: the
// matchers select series through its index and every sample is merged into
// its bucket in one pass, with no allocation per sample. The series of
// different writers with the same labels merge into one result series.
func (s *Store) Query(ctx context.Context, q tsstore.Query) (*tsstore.Result, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := q.Validate(s.width); err != nil {
		return nil, fmt.Errorf("promtsdb: query: %w", err)
	}
	if err := s.enter("query"); err != nil {
		return nil, err
	}
	defer s.closeMu.RUnlock()

	w, step := s.widthMs, q.Step.Milliseconds()
	groups := make(map[string]*group)
	var (
		it      chunkenc.Iterator
		scratch []partBucket
	)
	err := s.selectCells(ctx, q.Selector(), func(k int, lset labels.Labels, series storage.Series) error {
		// Bucket this series' samples: they come in time order, so each
		// bucket is the last one or a new one.
		scratch = scratch[:0]
		it = series.Iterator(it)
		for vt := it.Next(); vt != chunkenc.ValNone; vt = it.Next() {
			if vt != chunkenc.ValFloat {
				continue
			}
			t, v := it.At()
			start := t - mod(t, w)
			if start < q.From || start >= q.To {
				continue
			}
			bs := q.From + (start-q.From)/step*step
			if n := len(scratch); n > 0 && scratch[n-1].start == bs {
				scratch[n-1].v = combine(k, scratch[n-1].v, v)
			} else {
				scratch = append(scratch, partBucket{bs, v})
			}
		}
		if err := it.Err(); err != nil {
			return tsstore.Errorf(tsstore.ErrUnavailable, "reading %s: %w", lset, err)
		}
		if len(scratch) == 0 {
			return nil
		}
		ls := cellLabels(lset, q.GroupBy)
		key := ls.Key()
		g := groups[key]
		if g == nil {
			g = &group{labels: ls}
			groups[key] = g
		}
		g.merge(k, scratch)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("promtsdb: query %s: %w", q.Metric, err)
	}
	r := &tsstore.Result{Series: make([]tsstore.Series, 0, len(groups))}
	for _, g := range groups {
		bs := slices.DeleteFunc(g.buckets, func(b tsstore.Bucket) bool { return b.Count == 0 })
		if len(bs) > 0 {
			r.Series = append(r.Series, tsstore.Series{Labels: g.labels, Buckets: bs})
		}
	}
	slices.SortFunc(r.Series, func(a, b tsstore.Series) int { return a.Labels.Compare(b.Labels) })
	return r, nil
}

func mod(a, b int64) int64 {
	m := a % b
	if m < 0 {
		m += b
	}
	return m
}

// partBucket is one bucket of one component of one series.
type partBucket struct {
	start int64
	v     float64
}

// combine merges two values of component k.
func combine(k int, a, b float64) float64 {
	switch k {
	case compMin:
		return math.Min(a, b)
	case compMax:
		return math.Max(a, b)
	}
	return a + b
}

// group is one series of a result being built: its buckets sorted by start.
type group struct {
	labels  tsstore.Labels
	buckets []tsstore.Bucket
}

func newBucket(start int64) tsstore.Bucket {
	return tsstore.Bucket{Start: start, Agg: tsstore.Agg{Min: math.Inf(1), Max: math.Inf(-1)}}
}

func apply(b *tsstore.Bucket, k int, v float64) {
	switch k {
	case compCount:
		b.Count += uint64(v)
	case compSum:
		b.Sum += v
	case compMin:
		b.Min = math.Min(b.Min, v)
	case compMax:
		b.Max = math.Max(b.Max, v)
	}
}

// merge merges the sorted buckets ps of component k into g.
func (g *group) merge(k int, ps []partBucket) {
	// Common cases first: appending after the last bucket, or the same
	// bucket starts as already there.
	if n := len(g.buckets); n == 0 || ps[0].start > g.buckets[n-1].Start {
		for _, p := range ps {
			b := newBucket(p.start)
			apply(&b, k, p.v)
			g.buckets = append(g.buckets, b)
		}
		return
	}
	missing := 0
	i := 0
	for _, p := range ps {
		for i < len(g.buckets) && g.buckets[i].Start < p.start {
			i++
		}
		if i == len(g.buckets) || g.buckets[i].Start != p.start {
			missing++
		}
	}
	if missing > 0 {
		merged := make([]tsstore.Bucket, 0, len(g.buckets)+missing)
		i = 0
		for _, p := range ps {
			for i < len(g.buckets) && g.buckets[i].Start < p.start {
				merged = append(merged, g.buckets[i])
				i++
			}
			if i == len(g.buckets) || g.buckets[i].Start != p.start {
				merged = append(merged, newBucket(p.start))
			}
		}
		merged = append(merged, g.buckets[i:]...)
		g.buckets = merged
	}
	i = 0
	for _, p := range ps {
		for g.buckets[i].Start < p.start {
			i++
		}
		apply(&g.buckets[i], k, p.v)
	}
}

// Cells returns the stored cells selected by sel, every partial on its own
// (Seq is the sample's offset from the cell start, Writer the series'
// __writer__ label or "").
func (s *Store) Cells(ctx context.Context, sel tsstore.Selector) ([]tsstore.Cell, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := sel.Validate(); err != nil {
		return nil, fmt.Errorf("promtsdb: cells: %w", err)
	}
	if err := s.enter("cells"); err != nil {
		return nil, err
	}
	defer s.closeMu.RUnlock()

	type sample struct {
		t int64
		v float64
	}
	type cellSeries struct {
		labels tsstore.Labels
		writer string
		comps  [numComps][]sample
	}
	bySeries := make(map[string]*cellSeries)
	var it chunkenc.Iterator
	err := s.selectCells(ctx, sel, func(k int, lset labels.Labels, series storage.Series) error {
		var samples []sample
		it = series.Iterator(it)
		for vt := it.Next(); vt != chunkenc.ValNone; vt = it.Next() {
			if vt != chunkenc.ValFloat {
				continue
			}
			t, v := it.At()
			if start := t - mod(t, s.widthMs); start >= sel.From && start < sel.To {
				samples = append(samples, sample{t, v})
			}
		}
		if err := it.Err(); err != nil {
			return tsstore.Errorf(tsstore.ErrUnavailable, "reading %s: %w", lset, err)
		}
		ls := cellLabels(lset, nil)
		writer := lset.Get(writerLabel)
		key := ls.Key() + writer // injective: a key ends with 0xff, a writer has none
		cs := bySeries[key]
		if cs == nil {
			cs = &cellSeries{labels: ls, writer: strings.Clone(writer)}
			bySeries[key] = cs
		}
		cs.comps[k] = samples
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("promtsdb: cells %s: %w", sel.Metric, err)
	}
	var out []tsstore.Cell
	for _, cs := range bySeries {
		// Join the components by timestamp; all four are written together.
		var pos [numComps]int
		for _, cnt := range cs.comps[compCount] {
			c := tsstore.Cell{Metric: sel.Metric, Labels: cs.labels, Start: cnt.t - mod(cnt.t, s.widthMs), Writer: cs.writer, Agg: tsstore.Agg{Count: uint64(cnt.v)}}
			c.Seq = uint32(cnt.t - c.Start)
			for k := compSum; k < numComps; k++ {
				ss := cs.comps[k]
				for pos[k] < len(ss) && ss[pos[k]].t < cnt.t {
					pos[k]++
				}
				if pos[k] < len(ss) && ss[pos[k]].t == cnt.t {
					switch k {
					case compSum:
						c.Sum = ss[pos[k]].v
					case compMin:
						c.Min = ss[pos[k]].v
					case compMax:
						c.Max = ss[pos[k]].v
					}
				}
			}
			out = append(out, c)
		}
	}
	return out, nil
}
