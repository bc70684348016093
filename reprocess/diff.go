package reprocess

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/hourglass-io/hourglass/tsstore"
)

// DefaultDiffTop is how many largest differences a Diff lists.
const DefaultDiffTop = 20

// DiffOptions selects what Compare compares.
type DiffOptions struct {
	// Metrics to compare; required (a version's Lineage.Metrics, plus any
	// metric the old processor made that the new one no longer does).
	Metrics []string
	// Matchers restrict the series compared; none means all.
	Matchers []tsstore.Matcher
	// From and To bound the range (ms).
	From, To int64
	// Step is the bucket width; 0 means the cell width of the old store.
	Step time.Duration
	// Top is the number of largest differences kept; 0 means
	// DefaultDiffTop.
	Top int
}

// Diff compares two stores per series and bucket. It is JSON-encodable as
// the machine-readable report; String gives a summary.
type Diff struct {
	From   int64    `json:"from"`
	To     int64    `json:"to"`
	StepMs int64    `json:"step_ms"`
	Metric []string `json:"metrics"`
	// Series counts the series seen in either store; SeriesChanged those
	// in both with at least one different bucket, SeriesAdded those only
	// in the new store, SeriesRemoved those only in the old one.
	Series        int `json:"series"`
	SeriesChanged int `json:"series_changed"`
	SeriesAdded   int `json:"series_added"`
	SeriesRemoved int `json:"series_removed"`
	// Buckets counts the buckets compared, BucketsChanged those that
	// differ in any of count, sum, min and max.
	Buckets        int `json:"buckets"`
	BucketsChanged int `json:"buckets_changed"`
	// Changes lists every series that differs, sorted by metric and labels.
	Changes []SeriesChange `json:"changes"`
	// Largest lists the changed buckets with the largest absolute
	// difference of Sum, LargestRelative those with the largest relative
	// one; at most Top each.
	Largest         []BucketChange `json:"largest"`
	LargestRelative []BucketChange `json:"largest_relative"`
}

// SeriesChange summarises one series that differs.
type SeriesChange struct {
	Metric string            `json:"metric"`
	Labels map[string]string `json:"labels"`
	// Kind is "changed", "added" or "removed".
	Kind string `json:"kind"`
	// Buckets is the number of buckets that differ; SumDelta the change
	// of the series' total Sum (new minus old).
	Buckets  int     `json:"buckets"`
	SumDelta float64 `json:"sum_delta"`
}

// BucketChange is one bucket that differs.
type BucketChange struct {
	Metric string            `json:"metric"`
	Labels map[string]string `json:"labels"`
	Start  int64             `json:"start"`
	Old    tsstore.Agg       `json:"old"`
	New    tsstore.Agg       `json:"new"`
	// AbsDiff is |New.Sum - Old.Sum|; RelDiff is AbsDiff divided by the
	// larger of |Old.Sum| and |New.Sum| (0 to 2; 1 when one side is 0).
	AbsDiff float64 `json:"abs_diff"`
	RelDiff float64 `json:"rel_diff"`
}

// Compare compares the new store with the old one over opts' range, per
// series and bucket of every metric in opts.Metrics.
func Compare(ctx context.Context, old, new tsstore.Store, opts DiffOptions) (*Diff, error) {
	step := opts.Step
	if step == 0 {
		step = old.CellWidth()
	}
	top := opts.Top
	if top <= 0 {
		top = DefaultDiffTop
	}
	if len(opts.Metrics) == 0 {
		return nil, tsstore.Errorf(tsstore.ErrInvalid, "reprocess: compare: no metrics given")
	}
	d := &Diff{From: opts.From, To: opts.To, StepMs: step.Milliseconds(), Metric: slices.Sorted(slices.Values(opts.Metrics))}
	var all []BucketChange
	for _, m := range d.Metric {
		q := tsstore.Query{Metric: m, Matchers: opts.Matchers, From: opts.From, To: opts.To, Step: step}
		ro, err := old.Query(ctx, q)
		if err != nil {
			return nil, fmt.Errorf("reprocess: compare: old store: %w", err)
		}
		rn, err := new.Query(ctx, q)
		if err != nil {
			return nil, fmt.Errorf("reprocess: compare: new store: %w", err)
		}
		all = d.compareMetric(m, ro.Series, rn.Series, all)
	}
	byAbs := slices.Clone(all)
	slices.SortStableFunc(byAbs, func(a, b BucketChange) int { return cmp.Compare(b.AbsDiff, a.AbsDiff) })
	d.Largest = byAbs[:min(top, len(byAbs))]
	slices.SortStableFunc(all, func(a, b BucketChange) int { return cmp.Compare(b.RelDiff, a.RelDiff) })
	d.LargestRelative = all[:min(top, len(all))]
	return d, nil
}

// compareMetric merges two sorted series lists.
func (d *Diff) compareMetric(metric string, old, new []tsstore.Series, all []BucketChange) []BucketChange {
	i, j := 0, 0
	for i < len(old) || j < len(new) {
		var o, n *tsstore.Series
		switch {
		case j >= len(new):
			o = &old[i]
			i++
		case i >= len(old):
			n = &new[j]
			j++
		default:
			switch c := old[i].Labels.Compare(new[j].Labels); {
			case c < 0:
				o = &old[i]
				i++
			case c > 0:
				n = &new[j]
				j++
			default:
				o, n = &old[i], &new[j]
				i++
				j++
			}
		}
		d.Series++
		var ls tsstore.Labels
		var ob, nb []tsstore.Bucket
		kind := "changed"
		switch {
		case o == nil:
			ls, nb, kind = n.Labels, n.Buckets, "added"
		case n == nil:
			ls, ob, kind = o.Labels, o.Buckets, "removed"
		default:
			ls, ob, nb = o.Labels, o.Buckets, n.Buckets
		}
		sc := SeriesChange{Metric: metric, Labels: ls.Map(), Kind: kind}
		for a, b := 0, 0; a < len(ob) || b < len(nb); {
			var oa, na tsstore.Agg
			var start int64
			switch {
			case b >= len(nb) || a < len(ob) && ob[a].Start < nb[b].Start:
				start, oa = ob[a].Start, ob[a].Agg
				a++
			case a >= len(ob) || nb[b].Start < ob[a].Start:
				start, na = nb[b].Start, nb[b].Agg
				b++
			default:
				start, oa, na = ob[a].Start, ob[a].Agg, nb[b].Agg
				a++
				b++
			}
			d.Buckets++
			if oa == na {
				continue
			}
			abs := math.Abs(na.Sum - oa.Sum)
			rel := 0.0
			if den := max(math.Abs(oa.Sum), math.Abs(na.Sum)); den > 0 {
				rel = abs / den
			}
			d.BucketsChanged++
			sc.Buckets++
			sc.SumDelta += na.Sum - oa.Sum
			all = append(all, BucketChange{Metric: metric, Labels: sc.Labels, Start: start, Old: oa, New: na, AbsDiff: abs, RelDiff: rel})
		}
		if sc.Buckets == 0 {
			continue
		}
		switch kind {
		case "added":
			d.SeriesAdded++
		case "removed":
			d.SeriesRemoved++
		default:
			d.SeriesChanged++
		}
		d.Changes = append(d.Changes, sc)
	}
	return all
}

// String summarises the diff in a few lines.
func (d *Diff) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d series compared over [%s, %s) in steps of %v: %d changed, %d added, %d removed; %d of %d buckets differ",
		d.Series, tsstore.TimeOf(d.From).Format(time.RFC3339), tsstore.TimeOf(d.To).Format(time.RFC3339), time.Duration(d.StepMs)*time.Millisecond,
		d.SeriesChanged, d.SeriesAdded, d.SeriesRemoved, d.BucketsChanged, d.Buckets)
	if len(d.Largest) > 0 {
		l := d.Largest[0]
		fmt.Fprintf(&b, "\nlargest difference: %s%v at %s: sum %v -> %v", l.Metric, l.Labels, tsstore.TimeOf(l.Start).Format(time.RFC3339), l.Old.Sum, l.New.Sum)
	}
	return b.String()
}

// Compare compares the version id with the live store over the version's
// range, for the metrics its processor made and those in opts.Metrics, and
// keeps the report as JSON in the version's diff.json.
// Zero fields of opts (nil means all zero) take the version's range and
// filter. It opens the version's store for the comparison and closes it,
// so it must not be current in a Switchable of this process; compare
// before switching, or use the package-level Compare with the Switchable's
// stores.
func (v *Versions) Compare(ctx context.Context, id string, live tsstore.Store, opts *DiffOptions) (*Diff, error) {
	lin, err := v.Lineage(id)
	if err != nil {
		return nil, err
	}
	if !lin.Complete() {
		return nil, tsstore.Errorf(tsstore.ErrInvalid, "reprocess: version %s is not complete", id)
	}
	var o DiffOptions
	if opts != nil {
		o = *opts
	}
	o.Metrics = slices.Compact(slices.Sorted(slices.Values(append(slices.Clone(lin.Metrics), o.Metrics...))))
	if o.From == 0 && o.To == 0 {
		o.From, o.To = lin.From, lin.Cutover
	}
	if o.Matchers == nil {
		if o.Matchers, err = lin.matchers(); err != nil {
			return nil, err
		}
	}
	st, err := v.OpenStore(id)
	if err != nil {
		return nil, err
	}
	d, err := Compare(ctx, live, st, o)
	if cerr := st.Close(); err == nil && cerr != nil {
		return nil, cerr
	}
	if err != nil {
		return nil, err
	}
	if err := writeJSONAtomic(filepath.Join(v.Dir(id), diffFile), d); err != nil {
		return nil, err
	}
	return d, nil
}
