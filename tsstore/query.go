package tsstore

import (
	"fmt"
	"regexp"
	"slices"
	"time"
)

// MatchType is the operator of a Matcher.
type MatchType int

// The match operators, as in PromQL.
const (
	MatchEqual     MatchType = iota // =
	MatchNotEqual                   // !=
	MatchRegexp                     // =~
	MatchNotRegexp                  // !~
)

// String returns the operator as written in PromQL.
func (t MatchType) String() string {
	switch t {
	case MatchEqual:
		return "="
	case MatchNotEqual:
		return "!="
	case MatchRegexp:
		return "=~"
	case MatchNotRegexp:
		return "!~"
	}
	return fmt.Sprintf("MatchType(%d)", int(t))
}

// Matcher selects series by one label. As in Prometheus, a missing label
// has the value "", regular expressions are RE2 anchored at both ends, and
// so {x!="a"} matches series without x.
//
// Build one with [NewMatcher]; a Matcher literal of type MatchEqual or
// MatchNotEqual works as is, a regexp literal is compiled on first use by
// Compile (stores call it through [Selector.Validate]).
type Matcher struct {
	Type  MatchType
	Name  string
	Value string
	re    *regexp.Regexp
}

// NewMatcher returns a matcher, compiling its regexp. Errors are of kind
// ErrInvalid.
func NewMatcher(t MatchType, name, value string) (Matcher, error) {
	m := Matcher{Type: t, Name: name, Value: value}
	err := m.Compile()
	return m, err
}

// Compile checks the matcher and compiles its regexp if it has one.
func (m *Matcher) Compile() error {
	if m.Name == "" {
		return Errorf(ErrInvalid, "matcher has an empty label name")
	}
	switch m.Type {
	case MatchEqual, MatchNotEqual:
		return nil
	case MatchRegexp, MatchNotRegexp:
		if m.re != nil {
			return nil
		}
		re, err := regexp.Compile("^(?s:" + m.Value + ")$")
		if err != nil {
			return Errorf(ErrInvalid, "matcher %s%s%q: %w", m.Name, m.Type, m.Value, err)
		}
		m.re = re
		return nil
	}
	return Errorf(ErrInvalid, "matcher on %q: unknown match type %d", m.Name, int(m.Type))
}

// Matches reports whether the label value v (or "" for a missing label)
// satisfies the matcher. A regexp matcher must have been compiled.
func (m *Matcher) Matches(v string) bool {
	switch m.Type {
	case MatchEqual:
		return v == m.Value
	case MatchNotEqual:
		return v != m.Value
	case MatchRegexp:
		return m.re != nil && m.re.MatchString(v)
	case MatchNotRegexp:
		return m.re != nil && !m.re.MatchString(v)
	}
	return false
}

// String formats the matcher as in PromQL: name="value".
func (m Matcher) String() string { return fmt.Sprintf("%s%s%q", m.Name, m.Type, m.Value) }

// MatchLabels reports whether ls satisfies every matcher.
func MatchLabels(ms []Matcher, ls Labels) bool {
	for i := range ms {
		if !ms[i].Matches(ls.Get(ms[i].Name)) {
			return false
		}
	}
	return true
}

// Selector selects the cells of one metric's series that satisfy all
// matchers, with Start in [From, To) (ms).
type Selector struct {
	Metric   string
	Matchers []Matcher
	From, To int64
}

// Validate checks the selector and compiles its matchers' regexps; when
// one needs compiling, s.Matchers is replaced by a compiled copy, so the
// caller's slice is never written. Errors are of kind ErrInvalid and name
// the field.
func (s *Selector) Validate() error {
	if err := ValidateMetric(s.Metric); err != nil {
		return err
	}
	// Compile into a copy when a regexp is not compiled yet: the slice may
	// be shared with other goroutines.
	if slices.ContainsFunc(s.Matchers, func(m Matcher) bool {
		return (m.Type == MatchRegexp || m.Type == MatchNotRegexp) && m.re == nil
	}) {
		s.Matchers = slices.Clone(s.Matchers)
	}
	for i := range s.Matchers {
		if err := s.Matchers[i].Compile(); err != nil {
			return err
		}
	}
	if err := validateTimestamp("from", s.From); err != nil {
		return err
	}
	if s.To <= s.From {
		return Errorf(ErrInvalid, "query range is empty: from %d >= to %d", s.From, s.To)
	}
	return nil
}

// Query asks for the aggregates of a metric's series in buckets of Step.
//
// Bucket k covers [From + k*Step, From + (k+1)*Step), cut at To; a cell
// belongs to the bucket that holds its Start. Cells are included when their
// Start is in [From, To).
type Query struct {
	Metric   string
	Matchers []Matcher
	// From and To bound the range [From, To) in ms.
	From, To int64
	// Step is the bucket width; a positive multiple of the store's cell
	// width.
	Step time.Duration
	// GroupBy, when non-nil, merges the matching series by the values of
	// these labels: each result series has only these labels. An empty,
	// non-nil slice merges all series into one. When nil, every matching
	// series is returned on its own with all its labels.
	GroupBy []string
}

// Selector returns the part of q that selects cells.
func (q *Query) Selector() Selector {
	return Selector{Metric: q.Metric, Matchers: q.Matchers, From: q.From, To: q.To}
}

// Validate checks q for a store with the given cell width, compiling its
// matchers as Selector.Validate does. Errors are of kind ErrInvalid and
// name the field.
func (q *Query) Validate(width time.Duration) error {
	sel := q.Selector()
	if err := sel.Validate(); err != nil {
		return err
	}
	q.Matchers = sel.Matchers
	if q.Step <= 0 || q.Step%width != 0 {
		return Errorf(ErrInvalid, "query step %v is not a positive multiple of the cell width %v", q.Step, width)
	}
	for _, g := range q.GroupBy {
		if err := validateLabelName(g); err != nil {
			return fmt.Errorf("group by: %w", err)
		}
	}
	return nil
}

// BucketStart returns the start of the bucket of q that holds t.
func (q *Query) BucketStart(t int64) int64 {
	s := q.Step.Milliseconds()
	return q.From + (t-q.From)/s*s
}

// Bucket is the aggregate of one result series over [Start, Start+Step)
// (cut at the query's To).
type Bucket struct {
	Start int64
	Agg
}

// Series is one series of a result: its labels (all of them, or the
// group-by labels) and its non-empty buckets in time order.
type Series struct {
	Labels  Labels
	Buckets []Bucket
}

// Result is the answer to a Query: series sorted by labels, each with its
// non-empty buckets sorted by start. Empty buckets are left out.
type Result struct {
	Series []Series
}

// ResultBuilder accumulates cells into the buckets of a query. Stores and
// the write-back engine use it so that every backend buckets and groups the
// same way. Not safe for concurrent use.
type ResultBuilder struct {
	q      *Query
	series map[string]*builderSeries
}

type builderSeries struct {
	labels  Labels
	buckets map[int64]*Agg
}

// NewResultBuilder returns a builder for q (which must be valid).
func NewResultBuilder(q *Query) *ResultBuilder {
	return &ResultBuilder{q: q, series: make(map[string]*builderSeries)}
}

// Add merges a cell's aggregate, of the series with labels ls starting at
// start, into its bucket. Cells outside [From, To) are ignored.
func (b *ResultBuilder) Add(ls Labels, start int64, a Agg) {
	if start < b.q.From || start >= b.q.To || a.Count == 0 {
		return
	}
	if b.q.GroupBy != nil {
		ls = groupLabels(ls, b.q.GroupBy)
	}
	key := ls.Key()
	s := b.series[key]
	if s == nil {
		s = &builderSeries{labels: ls.Copy(), buckets: make(map[int64]*Agg)}
		b.series[key] = s
	}
	bs := b.q.BucketStart(start)
	if cur := s.buckets[bs]; cur != nil {
		cur.Merge(a)
	} else {
		s.buckets[bs] = &a
	}
}

func groupLabels(ls Labels, by []string) Labels {
	out := make(Labels, 0, len(by))
	for _, l := range ls {
		if slices.Contains(by, l.Name) {
			out = append(out, l)
		}
	}
	return out
}

// Result returns the accumulated result, sorted.
func (b *ResultBuilder) Result() *Result {
	r := &Result{Series: make([]Series, 0, len(b.series))}
	for _, s := range b.series {
		out := Series{Labels: s.labels, Buckets: make([]Bucket, 0, len(s.buckets))}
		for start, a := range s.buckets {
			out.Buckets = append(out.Buckets, Bucket{Start: start, Agg: *a})
		}
		slices.SortFunc(out.Buckets, func(x, y Bucket) int { return cmpInt64(x.Start, y.Start) })
		r.Series = append(r.Series, out)
	}
	slices.SortFunc(r.Series, func(x, y Series) int { return x.Labels.Compare(y.Labels) })
	return r
}

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Aggregate answers q over cells (all of q's metric; matchers are applied
// here). It is the reference semantics of Store.Query.
func Aggregate(q *Query, cells []Cell) *Result {
	b := NewResultBuilder(q)
	for i := range cells {
		c := &cells[i]
		if c.Metric == q.Metric && MatchLabels(q.Matchers, c.Labels) {
			b.Add(c.Labels, c.Start, c.Agg)
		}
	}
	return b.Result()
}
