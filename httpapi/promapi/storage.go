package promapi

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/prometheus/prometheus/util/annotations"

	"github.com/hourglass-io/hourglass/httpapi"
	"github.com/hourglass-io/hourglass/tsstore"
)

// CellSource is where the cells come from: (*writeback.Engine) is one, with
// the exact merged view of its cache and store; a tsstore.Store is another.
// Cells returns every partial of the selected cells exactly once (Writer
// and Seq tell partials apart); the storage sums the partials of a
// (series, Start) into one sample. It must be safe for concurrent use.
type CellSource interface {
	Cells(ctx context.Context, sel tsstore.Selector) ([]tsstore.Cell, error)
	CellWidth() time.Duration
}

// MerchantLabel is the label a merchant's series carry and that a
// merchant-scoped Storage enforces.
const MerchantLabel = "merchant"

// Fields are the suffixes of the four series of a metric, in the order of
// their values in a cell's aggregate: <metric>:count, :sum, :min, :max.
var Fields = [...]string{"count", "sum", "min", "max"}

// SeriesName returns the name of the series of a metric's field:
// "<metric>:<field>".
func SeriesName(metric, field string) string { return metric + ":" + field }

// fieldValue returns field f (an index of Fields) of a.
func fieldValue(f int, a *tsstore.Agg) float64 {
	switch f {
	case 0:
		return float64(a.Count)
	case 1:
		return a.Sum
	case 2:
		return a.Min
	}
	return a.Max
}

// splitSeriesName returns the metric and the index in Fields of a series
// name, or ok false when the name is not <metric>:<field>.
func splitSeriesName(name string) (metric string, field int, ok bool) {
	i := strings.LastIndexByte(name, ':')
	if i <= 0 {
		return "", 0, false
	}
	f := slices.Index(Fields[:], name[i+1:])
	if f < 0 || tsstore.ValidateMetric(name[:i]) != nil {
		return "", 0, false
	}
	return name[:i], f, true
}

// Defaults of StorageOptions.
const (
	// DefaultMaxSamples bounds the samples one query loads (and the
	// samples the PromQL engine holds at once): Prometheus' default.
	DefaultMaxSamples = 50_000_000
	// DefaultMaxSeries bounds the series one query selects.
	DefaultMaxSeries = 100_000
	// loadChunk is the time range of the first read from the cell source
	// for a selector: the newest part, where the write-back engine merges
	// its cache (which holds up to an hour: flush interval plus budget)
	// into the store's cells, cell by cell; older parts it answers from
	// the store alone, several times faster. The next read covers as much
	// as half the remaining sample budget holds at the density seen so
	// far, or loadGrowth times the range before while nothing was found:
	// a query over too much data stops before it runs out of memory, and
	// a long range takes two or three reads.
	loadChunk  = 2 * time.Hour
	loadGrowth = 8
)

// ErrTooManySamples and ErrTooManySeries report a query that selects more
// than its bounds (an execution error of the HTTP API).
var (
	ErrTooManySamples = errors.New("query loads too many samples")
	ErrTooManySeries  = errors.New("query selects too many series")
)

// StorageOptions configures a Storage. A nil *StorageOptions means the
// defaults; every zero field means its default.
type StorageOptions struct {
	// Metrics lists the metrics that selectors without an exact series
	// name ({__name__=~"rev.*"}, {merchant="m"}) and label discovery look
	// at; nil means none, so such selectors find nothing while
	// revenue:sum{...} always works. It is called once per query.
	Metrics func(ctx context.Context) ([]string, error)
	// MaxSamples bounds the samples one querier loads; 0 means
	// DefaultMaxSamples.
	MaxSamples int
	// MaxSeries bounds the series one querier selects; 0 means
	// DefaultMaxSeries.
	MaxSeries int
}

// Storage is a storage.Queryable over a CellSource: every metric is four
// series, <metric>:count, :sum, :min and :max, with one sample per cell at
// the cell's Start (the partials of a cell summed), labelled as written.
// Selectors' matchers and time ranges are pushed down to the source.
//
// A Storage from NewStorage sees every merchant; one from ForMerchant only
// the series labelled merchant=<m>, whatever the matchers ask. Safe for
// concurrent use.
type Storage struct {
	src      CellSource
	opts     StorageOptions
	merchant string
	scoped   bool
}

var _ storage.Queryable = (*Storage)(nil)

// NewStorage returns a Storage over src that sees all merchants.
func NewStorage(src CellSource, opts *StorageOptions) *Storage {
	s := &Storage{src: src}
	if opts != nil {
		s.opts = *opts
	}
	if s.opts.MaxSamples <= 0 {
		s.opts.MaxSamples = DefaultMaxSamples
	}
	if s.opts.MaxSeries <= 0 {
		s.opts.MaxSeries = DefaultMaxSeries
	}
	return s
}

// ForMerchant returns a Storage that sees only the series labelled
// merchant=<merchant>.
func (s *Storage) ForMerchant(merchant string) *Storage {
	c := *s
	c.merchant, c.scoped = merchant, true
	return &c
}

// isMerchantMatcher reports whether m is the matcher of a scoped storage:
// MerchantLabel equal to its merchant.
func (s *Storage) isMerchantMatcher(m *labels.Matcher) bool {
	return m.Type == labels.MatchEqual && m.Name == MerchantLabel && m.Value == s.merchant
}

// Querier returns a querier over [mint, maxt] (ms, inclusive). It bounds
// the samples and series of everything selected through it.
func (s *Storage) Querier(mint, maxt int64) (storage.Querier, error) {
	return &querier{s: s, mint: mint, maxt: maxt}, nil
}

// querier is one query's view: its budget counts every Select.
type querier struct {
	s          *Storage
	mint, maxt int64

	mu      sync.Mutex // guards samples, series and missing
	samples int
	series  int
	// missing are the peers the answers so far lacked
	// (httpapi.DetailedEngine).
	missing []string
}

var _ storage.Querier = (*querier)(nil)

// Select returns the series matching ms, sorted, whether asked or not.
func (q *querier) Select(ctx context.Context, _ bool, hints *storage.SelectHints, ms ...*labels.Matcher) storage.SeriesSet {
	mint, maxt := q.mint, q.maxt
	if hints != nil {
		mint, maxt = max(mint, hints.Start), min(maxt, hints.End)
	}
	ss, err := q.selectSeries(ctx, mint, maxt, ms)
	if err != nil {
		return storage.ErrSeriesSet(err)
	}
	return &seriesSet{series: ss, i: -1, warnings: q.partialWarning()}
}

// partialWarning returns a warning naming the peers that the answers so
// far lacked, if any.
func (q *querier) partialWarning() annotations.Annotations {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.missing) == 0 {
		return nil
	}
	return annotations.New().Add(fmt.Errorf("partial answer: the cached cells of peers %s are missing (they did not answer)", strings.Join(q.missing, ", ")))
}

// LabelValues returns the values of the label name in the series matching
// ms, sorted.
func (q *querier) LabelValues(ctx context.Context, name string, hints *storage.LabelHints, ms ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	ss, err := q.selectSeries(ctx, q.mint, q.maxt, ms)
	if err != nil {
		return nil, nil, err
	}
	set := make(map[string]struct{})
	for _, s := range ss {
		if v := s.labels.Get(name); v != "" {
			set[v] = struct{}{}
		}
	}
	return sortedLimited(set, hints), nil, nil
}

// LabelNames returns the label names of the series matching ms, sorted.
func (q *querier) LabelNames(ctx context.Context, hints *storage.LabelHints, ms ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	ss, err := q.selectSeries(ctx, q.mint, q.maxt, ms)
	if err != nil {
		return nil, nil, err
	}
	set := make(map[string]struct{})
	for _, s := range ss {
		s.labels.Range(func(l labels.Label) { set[l.Name] = struct{}{} })
	}
	return sortedLimited(set, hints), nil, nil
}

func sortedLimited(set map[string]struct{}, hints *storage.LabelHints) []string {
	out := make([]string, 0, len(set))
	for v := range set {
		out = append(out, v)
	}
	slices.Sort(out)
	if hints != nil && hints.Limit > 0 && len(out) > hints.Limit {
		out = out[:hints.Limit]
	}
	return out
}

// Close does nothing: a querier holds no resources.
func (q *querier) Close() error { return nil }

// selectSeries returns the series matching ms with their cells in
// [mint, maxt], sorted by labels.
func (q *querier) selectSeries(ctx context.Context, mint, maxt int64, ms []*labels.Matcher) ([]*cellSeries, error) {
	from, to := max(mint, 0), min(maxt, tsstore.MaxTimestamp-1)+1
	if from >= to {
		return nil, nil
	}
	targets, err := q.targets(ctx, ms)
	if err != nil {
		return nil, err
	}
	// Matchers on the series name are answered by targets; on labels
	// starting with "__" here (stores may keep internal labels such as
	// __writer__ that must not be matched); the others go to the source.
	var push []tsstore.Matcher
	for _, m := range ms {
		if strings.HasPrefix(m.Name, "__") {
			continue
		}
		// labels.MatchType and tsstore.MatchType list =, !=, =~, !~ in
		// the same order (TestMatchTypes).
		tm, err := tsstore.NewMatcher(tsstore.MatchType(m.Type), m.Name, m.Value)
		if err != nil {
			return nil, fmt.Errorf("promapi: matcher %s: %w", m, err)
		}
		push = append(push, tm)
	}
	if q.s.scoped && !slices.ContainsFunc(ms, q.s.isMerchantMatcher) {
		// The handler's EnforceMatchers added it already when it ran.
		push = append(push, tsstore.Matcher{Type: tsstore.MatchEqual, Name: MerchantLabel, Value: q.s.merchant})
	}
	var out []*cellSeries
	for _, t := range targets {
		before := len(out)
		groups, err := q.load(ctx, tsstore.Selector{Metric: t.metric, Matchers: push, From: from, To: to}, len(t.fields))
		if err != nil {
			return nil, err
		}
		for _, g := range groups {
			// Defence in depth: whatever the source answered, a scoped
			// storage shows its merchant's series only, and every series
			// matches every matcher.
			if q.s.scoped && g.labels.Get(MerchantLabel) != q.s.merchant {
				continue
			}
			g.merge()
			for _, f := range t.fields {
				ls := seriesLabels(SeriesName(t.metric, Fields[f]), g.labels)
				if !matchAll(ms, ls) {
					continue
				}
				out = append(out, &cellSeries{labels: ls, cells: g, field: f})
			}
		}
		if err := q.count(0, len(out)-before); err != nil {
			return nil, err
		}
	}
	slices.SortFunc(out, func(a, b *cellSeries) int { return labels.Compare(a.labels, b.labels) })
	return out, nil
}

// take counts samples loaded, returning how many more the budget allows.
func (q *querier) take(samples int) (int, error) {
	if err := q.count(samples, 0); err != nil {
		return 0, err
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.s.opts.MaxSamples - q.samples, nil
}

// count adds to the querier's budget, failing when it is exceeded.
func (q *querier) count(samples, series int) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.samples += samples
	q.series += series
	switch {
	case q.samples > q.s.opts.MaxSamples:
		return fmt.Errorf("promapi: %w: more than %d", ErrTooManySamples, q.s.opts.MaxSamples)
	case q.series > q.s.opts.MaxSeries:
		return fmt.Errorf("promapi: %w: more than %d", ErrTooManySeries, q.s.opts.MaxSeries)
	}
	return nil
}

// target is a metric and the fields of it that a selector asks for.
type target struct {
	metric string
	fields []int
}

// targets returns the metrics and fields whose series names match every
// matcher on __name__: the one named by an equality matcher, or else those
// of the metrics StorageOptions.Metrics lists.
func (q *querier) targets(ctx context.Context, ms []*labels.Matcher) ([]target, error) {
	var names []*labels.Matcher
	exact := ""
	for _, m := range ms {
		if m.Name == model.MetricNameLabel {
			names = append(names, m)
			if m.Type == labels.MatchEqual {
				exact = m.Value
			}
		}
	}
	var metrics []string
	if exact != "" {
		metric, _, ok := splitSeriesName(exact)
		if !ok {
			return nil, nil
		}
		metrics = []string{metric}
	} else if q.s.opts.Metrics != nil {
		var err error
		if metrics, err = q.s.opts.Metrics(ctx); err != nil {
			return nil, fmt.Errorf("promapi: listing metrics: %w", err)
		}
	}
	var out []target
	for _, metric := range metrics {
		t := target{metric: metric}
		for f := range Fields {
			name := SeriesName(metric, Fields[f])
			if !slices.ContainsFunc(names, func(m *labels.Matcher) bool { return !m.Matches(name) }) {
				t.fields = append(t.fields, f)
			}
		}
		if len(t.fields) > 0 {
			out = append(out, t)
		}
	}
	return out, nil
}

// load reads the cells of sel from the source, in growing parts of its
// range (see loadChunk), and groups them by series. fields is the number of
// series each cell becomes.
func (q *querier) load(ctx context.Context, sel tsstore.Selector, fields int) ([]*cellGroup, error) {
	l := &loader{groups: make(map[string]*cellGroup)}
	width := q.s.src.CellWidth().Milliseconds()
	// Parts start on cell boundaries: the buckets of a query with the
	// cell width as step are then the cells.
	sel.From += mod(-sel.From, width)
	chunk := max(loadChunk.Milliseconds(), width)
	var read, span int64 // samples and time range read so far
	// Newest first: the write-back engine merges its cache into the
	// recent part only, and answers older parts from the store alone.
	for to := sel.To; to > sel.From; {
		part := sel
		part.To = to
		part.From = max(sel.From, to-chunk)
		part.From -= mod(part.From-sel.From, width)
		to = part.From
		n, err := q.loadPart(ctx, l, part)
		if err != nil {
			return nil, fmt.Errorf("promapi: cells of %s: %w", sel.Metric, err)
		}
		left, err := q.take(n * fields)
		if err != nil {
			return nil, err
		}
		read += int64(n * fields)
		span += part.To - part.From
		if read == 0 {
			chunk = min(chunk*loadGrowth, tsstore.MaxTimestamp)
			continue
		}
		fit := float64(left) / 2 * float64(span) / float64(read)
		chunk = int64(min(fit, float64(tsstore.MaxTimestamp)))
		chunk = max(width, chunk-chunk%width)
	}
	for _, g := range l.order {
		g.join()
	}
	return l.order, nil
}

// BucketSource is an optional capability of a CellSource: answering a
// tsstore.Query exactly (the write-back engine and every tsstore.Store
// do). A Storage reads such a source with Query and the cell width as
// step, which sums each cell's partials where they are kept, rather than
// with Cells, which hands every partial over.
type BucketSource interface {
	Query(ctx context.Context, q tsstore.Query) (*tsstore.Result, error)
}

// loader accumulates the parts of one selector's cells.
type loader struct {
	groups map[string]*cellGroup
	order  []*cellGroup
}

// group returns the group of the series with labels ls.
func (l *loader) group(ls tsstore.Labels) *cellGroup {
	key := ls.Key()
	g := l.groups[key]
	if g == nil {
		g = &cellGroup{labels: ls}
		l.groups[key] = g
		l.order = append(l.order, g)
	}
	return g
}

// loadPart reads the cells of sel (From on a cell boundary) into l,
// returning how many it read.
func (q *querier) loadPart(ctx context.Context, l *loader, sel tsstore.Selector) (int, error) {
	if bs, ok := q.s.src.(BucketSource); ok {
		tq := tsstore.Query{Metric: sel.Metric, Matchers: sel.Matchers, From: sel.From, To: sel.To, Step: q.s.src.CellWidth()}
		var res *tsstore.Result
		var err error
		// A source that names the peers an answer lacks (*writeback.Engine
		// with Options.Peers): their names become a warning of the query.
		if ps, ok := q.s.src.(httpapi.DetailedEngine); ok {
			var missing []string
			res, missing, err = ps.QueryDetailed(ctx, tq)
			q.noteMissing(missing)
		} else {
			res, err = bs.Query(ctx, tq)
		}
		if err != nil {
			return 0, err
		}
		n := 0
		for _, s := range res.Series {
			g := l.group(s.Labels)
			g.parts = append(g.parts, s.Buckets)
			n += len(s.Buckets)
		}
		return n, nil
	}
	cells, err := q.s.src.Cells(ctx, sel)
	if err != nil {
		return 0, err
	}
	var (
		last *cellGroup
		part []tsstore.Bucket
	)
	for i := range cells {
		c := &cells[i]
		// Stores hand out a series' cells together, often sharing its
		// labels: then the key need not be built.
		if last == nil || !sameLabels(last.labels, c.Labels) {
			if last != nil {
				last.parts = append(last.parts, part)
			}
			last, part = l.group(c.Labels), nil
		}
		part = append(part, tsstore.Bucket{Start: c.Start, Agg: c.Agg})
	}
	if last != nil {
		last.parts = append(last.parts, part)
	}
	return len(cells), nil
}

// noteMissing adds peers an answer lacked.
func (q *querier) noteMissing(missing []string) {
	if len(missing) == 0 {
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, m := range missing {
		if !slices.Contains(q.missing, m) {
			q.missing = append(q.missing, m)
		}
	}
}

func mod(a, b int64) int64 {
	m := a % b
	if m < 0 {
		m += b
	}
	return m
}

// sameLabels reports whether a and b are the same slice (not merely
// equal), or equal.
func sameLabels(a, b tsstore.Labels) bool {
	if len(a) != len(b) {
		return false
	}
	return len(a) == 0 || &a[0] == &b[0] || a.Equal(b)
}

// seriesLabels returns the labels of a series: its name and the cell's
// labels.
func seriesLabels(name string, ls tsstore.Labels) labels.Labels {
	b := labels.NewScratchBuilder(len(ls) + 1)
	b.Add(model.MetricNameLabel, name)
	for _, l := range ls {
		b.Add(l.Name, l.Value)
	}
	b.Sort()
	return b.Labels()
}

func matchAll(ms []*labels.Matcher, ls labels.Labels) bool {
	for _, m := range ms {
		if !m.Matches(ls.Get(m.Name)) {
			return false
		}
	}
	return true
}

// cellGroup holds the cells of one series (metric and labels): after merge,
// one aggregate per Start, in time order. The four series of a metric share
// it.
type cellGroup struct {
	labels tsstore.Labels
	cells  []tsstore.Bucket // one per cell: Start and Agg
	parts  [][]tsstore.Bucket
}

// join sets cells to the parts read, in reverse order (they were read
// newest first).
func (g *cellGroup) join() {
	if len(g.parts) == 1 {
		g.cells, g.parts = g.parts[0], nil
		return
	}
	n := 0
	for _, p := range g.parts {
		n += len(p)
	}
	g.cells = make([]tsstore.Bucket, 0, n)
	for i := len(g.parts) - 1; i >= 0; i-- {
		g.cells = append(g.cells, g.parts[i]...)
	}
	g.parts = nil
}

// merge sorts the cells by Start and sums the partials of each Start.
func (g *cellGroup) merge() {
	if !slices.IsSortedFunc(g.cells, cmpStart) {
		slices.SortFunc(g.cells, cmpStart)
	}
	n := 0
	for i := range g.cells {
		if n > 0 && g.cells[n-1].Start == g.cells[i].Start {
			g.cells[n-1].Merge(g.cells[i].Agg)
			continue
		}
		g.cells[n] = g.cells[i]
		n++
	}
	g.cells = g.cells[:n]
}

func cmpStart(a, b tsstore.Bucket) int { return cmp.Compare(a.Start, b.Start) }

// cellSeries is one field of a cell group as a storage.Series.
type cellSeries struct {
	labels labels.Labels
	cells  *cellGroup
	field  int
	points fpoints // the field's samples, made on the first Iterator call
}

func (s *cellSeries) Labels() labels.Labels { return s.labels }

// Iterator iterates over the field's samples with Prometheus' own list
// iterator (an iterator of this package would need a Seek method that
// go vet takes for io.Seeker's).
func (s *cellSeries) Iterator(chunkenc.Iterator) chunkenc.Iterator {
	if s.points == nil {
		s.points = make(fpoints, len(s.cells.cells))
		for i := range s.cells.cells {
			c := &s.cells.cells[i]
			s.points[i] = fpoint{t: c.Start, f: fieldValue(s.field, &c.Agg)}
		}
	}
	return storage.NewListSeriesIterator(s.points)
}

// fpoint is a float sample.
type fpoint struct {
	t int64
	f float64
}

func (p *fpoint) T() int64                      { return p.t }
func (p *fpoint) ST() int64                     { return 0 }
func (p *fpoint) F() float64                    { return p.f }
func (p *fpoint) H() *histogram.Histogram       { return nil }
func (p *fpoint) FH() *histogram.FloatHistogram { return nil }
func (p *fpoint) Type() chunkenc.ValueType      { return chunkenc.ValFloat }
func (p *fpoint) Copy() chunks.Sample           { c := *p; return &c }

// fpoints are a series' samples in time order as storage.Samples.
type fpoints []fpoint

func (s fpoints) Get(i int) chunks.Sample { return &s[i] }
func (s fpoints) Len() int                { return len(s) }

type seriesSet struct {
	series   []*cellSeries
	i        int
	warnings annotations.Annotations
}

func (s *seriesSet) Next() bool {
	s.i++
	return s.i < len(s.series)
}
func (s *seriesSet) At() storage.Series                { return s.series[s.i] }
func (s *seriesSet) Err() error                        { return nil }
func (s *seriesSet) Warnings() annotations.Annotations { return s.warnings }
