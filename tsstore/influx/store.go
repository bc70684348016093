package influx

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	influxdb2 "github.com/influxdata/influxdb-client-go/v2"
	"github.com/influxdata/influxdb-client-go/v2/api"

	"github.com/hourglass-io/hourglass/internal/gate"
	"github.com/hourglass-io/hourglass/internal/httpretry"
	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/tsstore/internal/bounds"
)

// Store is a tsstore.Store on an InfluxDB server. Create one with Open. It
// is safe for concurrent use.
type Store struct {
	url   *url.URL
	opts  Options // with defaults filled in
	width time.Duration

	timeout time.Duration
	retry   httpretry.Policy

	http    *http.Client
	ownHTTP bool
	client  influxdb2.Client
	writeV2 api.WriteAPIBlocking
	queryV2 api.QueryAPI

	queryURL   string
	v1WriteURL string
	from       string // the InfluxQL FROM prefix: "db"."rp". or ""

	// bounds keeps an upper bound of the stored point times of series
	// and writers (see bounds.go); its stripes (by series key) serialize
	// the conflict check and write of a series within this Store.
	bounds bounds.Table[boundKey]

	calls gate.Gate // operations in progress; closed by Close
}

var _ tsstore.Store = (*Store)(nil)

// Open returns a Store on the InfluxDB server at serverURL (such as
// "http://localhost:8086"). It does no I/O: the database (1.x) or bucket
// (2.x) must exist (see EnsureDatabase). A nil opts means the defaults.
// Errors are of kind tsstore.ErrInvalid.
func Open(serverURL string, opts *Options) (*Store, error) {
	u, err := url.Parse(serverURL)
	if err != nil {
		return nil, tsstore.Errorf(tsstore.ErrInvalid, "influx: open: server URL %q: %w", serverURL, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, tsstore.Errorf(tsstore.ErrInvalid, "influx: open: server URL %q is not http(s)://host[:port]", serverURL)
	}
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Database == "" {
		o.Database = DefaultDatabase
	}
	if o.Bucket == "" {
		o.Bucket = o.Database
		if o.RetentionPolicy != "" {
			o.Bucket += "/" + o.RetentionPolicy
		}
	}
	if o.BatchSize <= 0 {
		o.BatchSize = DefaultBatchSize
	}
	if o.CellWidth == 0 {
		o.CellWidth = DefaultCellWidth
	}
	if o.CellWidth < time.Millisecond || o.CellWidth%time.Millisecond != 0 {
		return nil, tsstore.Errorf(tsstore.ErrInvalid, "influx: open: cell width %v is not a positive whole number of milliseconds", o.CellWidth)
	}
	if o.WriteAPI != WriteV1 && o.WriteAPI != WriteV2 {
		return nil, tsstore.Errorf(tsstore.ErrInvalid, "influx: open: unknown write API %d", int(o.WriteAPI))
	}
	if o.QueryLanguage != InfluxQL && o.QueryLanguage != Flux {
		return nil, tsstore.Errorf(tsstore.ErrInvalid, "influx: open: unknown query language %d", int(o.QueryLanguage))
	}
	s := &Store{
		url:     u,
		opts:    o,
		width:   o.CellWidth,
		timeout: orDefault(o.RequestTimeout, DefaultRequestTimeout),
		retry: httpretry.Policy{
			MaxRetries:  o.MaxRetries,
			Interval:    orDefault(o.RetryInterval, DefaultRetryInterval),
			MaxInterval: orDefault(o.MaxRetryInterval, DefaultMaxRetryInterval),
		},
		http: o.HTTPClient,
	}
	tracked := o.MaxTrackedSeries
	if tracked == 0 {
		tracked = DefaultMaxTrackedSeries
	}
	s.bounds.SetLimit(tracked) // negative: none
	if s.retry.MaxRetries == 0 {
		s.retry.MaxRetries = DefaultMaxRetries
	} else if s.retry.MaxRetries < 0 {
		s.retry.MaxRetries = 0
	}
	if s.http == nil {
		s.http = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
		s.ownHTTP = true
	}
	token := o.Token
	if token == "" && o.Username != "" {
		token = o.Username + ":" + o.Password
	}
	copts := influxdb2.DefaultOptions().
		SetHTTPClient(s.http).
		SetApplicationName("hourglass").
		SetPrecision(time.Millisecond).
		SetUseGZip(!o.DisableGzip).
		SetLogLevel(0)
	s.client = influxdb2.NewClientWithOptions(strings.TrimSuffix(u.String(), "/"), token, copts)
	s.writeV2 = s.client.WriteAPIBlocking(o.Org, o.Bucket)
	s.queryV2 = s.client.QueryAPI(o.Org)
	s.queryURL = u.JoinPath("query").String()
	s.v1WriteURL = v1WriteURL(u, o.Database, o.RetentionPolicy)
	if o.RetentionPolicy != "" {
		s.from = quoteIdent(o.Database) + "." + quoteIdent(o.RetentionPolicy) + "."
	}
	return s, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// CellWidth returns the width of the store's cells.
func (s *Store) CellWidth() time.Duration { return s.width }

// begin starts an operation: it fails with ErrClosed once Close has
// begun, and otherwise counts the operation until end, so that Close waits
// for it.
func (s *Store) begin(op string) error {
	if !s.calls.Enter() {
		return tsstore.Errorf(tsstore.ErrClosed, "influx: %s", op)
	}
	return nil
}

func (s *Store) end() { s.calls.Leave() }

// Close waits for the operations in flight (writes are synchronous, so
// nothing is left buffered) and releases the store's connections. Every
// later call fails with ErrClosed; Close itself returns nil again.
func (s *Store) Close() error {
	if !s.calls.Close() {
		return nil
	}
	s.client.Close()
	if s.ownHTTP {
		s.http.CloseIdleConnections()
	}
	return nil
}

// EnsureDatabase creates the store's database if it does not exist
// (CREATE DATABASE over /query: InfluxDB 1.x). On 2.x create the bucket
// and its DBRP mapping instead.
func (s *Store) EnsureDatabase(ctx context.Context) error {
	if err := s.begin("ensure database"); err != nil {
		return err
	}
	defer s.end()
	return s.influxQL(ctx, "CREATE DATABASE "+quoteIdent(s.opts.Database), func(int, *respSeries, row) error { return nil })
}

// Write stores cells as points (see the package comment for the mapping).
// Unless Options.SkipConflictCheck is set it first reads the stored points
// of the batch's identities: a cell stored with the same aggregate is not
// written again, one stored with another aggregate fails the whole batch
// with tsstore.ErrConflict before anything is written.
func (s *Store) Write(ctx context.Context, cells []tsstore.Cell) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("influx: write: %w", err)
	}
	if err := tsstore.ValidateCells(cells, s.width); err != nil {
		return fmt.Errorf("influx: write: %w", err)
	}
	for i := range cells {
		c := &cells[i]
		if t := c.Start + int64(c.Seq); t > maxInfluxMillis {
			return tsstore.Errorf(tsstore.ErrInvalid, "influx: write: cell %d %s: time %d ms is after the last time InfluxDB can store (%d ms, 2262-04-11)", i, c.IDString(), t, maxInfluxMillis)
		}
		if n := seriesKeyLen(c); n > maxSeriesKeyLen {
			return tsstore.Errorf(tsstore.ErrInvalid, "influx: write: cell %d %s: its series key is %d bytes in line protocol, longer than InfluxDB's limit of %d", i, c.IDString(), n, maxSeriesKeyLen)
		}
		if c.Count > math.MaxInt64 {
			return tsstore.Errorf(tsstore.ErrInvalid, "influx: write: cell %d %s: count %d does not fit an InfluxDB integer", i, c.IDString(), c.Count)
		}
	}
	if err := s.begin("write"); err != nil {
		return err
	}
	defer s.end()

	// One point per identity: identical duplicates are dropped, differing
	// ones are a conflict within the batch.
	todo := make([]*tsstore.Cell, 0, len(cells))
	index := make([]int, 0, len(cells))
	ids := make([]tsstore.CellID, 0, len(cells))
	seen := make(map[tsstore.CellID]int, len(cells))
	var prev *tsstore.Cell // the series key of consecutive cells is built once
	var series string
	for i := range cells {
		c := &cells[i]
		if prev == nil || c.Metric != prev.Metric || !c.Labels.Equal(prev.Labels) {
			series, prev = tsstore.SeriesKey(c.Metric, c.Labels), c
		}
		id := tsstore.CellID{Series: series, Start: c.Start, Writer: c.Writer, Seq: c.Seq}
		if j, ok := seen[id]; ok {
			if cells[j].Agg != c.Agg {
				return tsstore.Errorf(tsstore.ErrConflict, "influx: write: cell %d %s appears twice in the batch (also cell %d) with different aggregates", i, c.IDString(), j)
			}
			continue
		}
		seen[id] = i
		ids = append(ids, id)
		todo = append(todo, c)
		index = append(index, i)
	}

	if !s.opts.SkipConflictCheck {
		stripes := make([]int, len(ids))
		for k := range ids {
			if k > 0 && ids[k].Series == ids[k-1].Series {
				stripes[k] = stripes[k-1]
			} else {
				stripes[k] = bounds.Stripe(ids[k].Series)
			}
		}
		unlock := s.bounds.Lock(len(stripes), func(k int) int { return stripes[k] })
		defer unlock()
		var err error
		if todo, index, err = s.checkConflicts(ctx, todo, index, ids, stripes); err != nil {
			return err
		}
	}

	body := make([]byte, 0, 64*min(len(todo), s.opts.BatchSize))
	var enc lineEncoder
	for lo := 0; lo < len(todo); lo += s.opts.BatchSize {
		hi := min(lo+s.opts.BatchSize, len(todo))
		body = body[:0]
		for _, c := range todo[lo:hi] {
			body = enc.appendLine(body, c)
		}
		if err := s.sendBatch(ctx, body, todo[lo:hi], index[lo:hi]); err != nil {
			return err
		}
	}
	return nil
}

// checkConflicts returns the cells of todo (with their indexes in the
// caller's batch) that must be written: it drops those stored with the same
// aggregate and fails with ErrConflict when one is stored with another.
// Cells after the bound of their series are kept without a read; the
// bounds of the series not remembered yet are read first. It then raises
// the bounds of the batch's series to the cells about to be written. ids
// and stripes are the cells' identities and lock stripes, which the caller
// holds.
func (s *Store) checkConflicts(ctx context.Context, todo []*tsstore.Cell, index []int, ids []tsstore.CellID, stripes []int) ([]*tsstore.Cell, []int, error) {
	// The cells that may collide with a stored point: at or before their
	// series' bound, or of a series without one (for now).
	var check []int
	var unknown map[boundKey]*unknownSeries
	for k, c := range todo {
		t := c.Start + int64(c.Seq)
		if s.bounds.Enabled() {
			key := boundKey{ids[k].Series, ids[k].Writer}
			b, ok := s.bounds.Get(stripes[k], key)
			if ok && t > b {
				continue
			}
			if !ok {
				if unknown == nil {
					unknown = make(map[boundKey]*unknownSeries)
				}
				if u := unknown[key]; u != nil {
					u.lo = min(u.lo, t)
				} else {
					unknown[key] = &unknownSeries{cell: c, stripe: stripes[k], lo: t}
				}
			}
		}
		check = append(check, k)
	}
	if len(unknown) > 0 {
		read, err := s.readBounds(ctx, unknown)
		if err != nil {
			return nil, nil, fmt.Errorf("influx: write: conflict check: %w", err)
		}
		for key, b := range read {
			s.bounds.Remember(unknown[key].stripe, key, b)
		}
		kept := check[:0]
		for _, k := range check {
			b, ok := read[boundKey{ids[k].Series, ids[k].Writer}]
			if !ok || todo[k].Start+int64(todo[k].Seq) <= b {
				kept = append(kept, k)
			}
		}
		check = kept
	}
	if len(check) > 0 {
		cs := make([]*tsstore.Cell, len(check))
		for i, k := range check {
			cs[i] = todo[k]
		}
		stored, err := s.storedAggs(ctx, cs)
		if err != nil {
			return nil, nil, fmt.Errorf("influx: write: conflict check: %w", err)
		}
		var drop map[int]bool
		for _, k := range check {
			c := todo[k]
			a, ok := stored[ids[k]]
			switch {
			case !ok:
			case a != c.Agg:
				return nil, nil, tsstore.Errorf(tsstore.ErrConflict, "influx: write: cell %d %s is stored as %+v, not %+v; nothing of the batch was written", index[k], c.IDString(), a, c.Agg)
			default:
				if drop == nil {
					drop = make(map[int]bool)
				}
				drop[k] = true
			}
		}
		if drop != nil {
			kept, keptIndex, keptIDs, keptStripes := todo[:0:0], index[:0:0], ids[:0:0], stripes[:0:0]
			for k := range todo {
				if !drop[k] {
					kept, keptIndex = append(kept, todo[k]), append(keptIndex, index[k])
					keptIDs, keptStripes = append(keptIDs, ids[k]), append(keptStripes, stripes[k])
				}
			}
			todo, index, ids, stripes = kept, keptIndex, keptIDs, keptStripes
		}
	}
	// Raised before sending: whatever part of the batch a failed write
	// leaves stored is below the new bounds, so they stay upper bounds.
	for k, c := range todo {
		s.bounds.Raise(stripes[k], boundKey{ids[k].Series, ids[k].Writer}, c.Start+int64(c.Seq))
	}
	return todo, index, nil
}

// Conflict-check reads: cells of one metric whose times are within
// checkGap of each other are read with one statement; up to
// checkMaxSeries distinct series are named in its WHERE clause.
const (
	checkGap       int64 = 3600 * 1000
	checkMaxSeries       = 32
)

// storedAggs reads the stored aggregates of the identities of cells.
func (s *Store) storedAggs(ctx context.Context, cells []*tsstore.Cell) (map[tsstore.CellID]tsstore.Agg, error) {
	byMetric := map[string][]*tsstore.Cell{}
	for _, c := range cells {
		byMetric[c.Metric] = append(byMetric[c.Metric], c)
	}
	type check struct {
		from   string
		lo, hi int64
		conds  []string
	}
	var checks []check
	for metric, cs := range byMetric {
		slices.SortFunc(cs, func(a, b *tsstore.Cell) int {
			return cmp.Compare(a.Start+int64(a.Seq), b.Start+int64(b.Seq))
		})
		for lo := 0; lo < len(cs); {
			hi := lo + 1
			for hi < len(cs) && cs[hi].Start+int64(cs[hi].Seq)-(cs[hi-1].Start+int64(cs[hi-1].Seq)) <= checkGap {
				hi++
			}
			checks = append(checks, check{s.from + quoteIdent(metric), cs[lo].Start + int64(cs[lo].Seq), cs[hi-1].Start + int64(cs[hi-1].Seq), seriesConds(cs[lo:hi])})
			lo = hi
		}
	}
	// First probe each range for any point at all (LIMIT 1, no GROUP BY:
	// several times cheaper for InfluxDB than reading the points by series),
	// then read the ranges that have some. New cells, the common case, cost
	// only the probe.
	probes := make([]string, len(checks))
	for i, c := range checks {
		probes[i] = probeQuery(c.from, c.lo, c.hi, c.conds)
	}
	found := make([]bool, len(checks))
	err := s.influxQL(ctx, strings.Join(probes, "; "), func(stmt int, _ *respSeries, _ row) error {
		if stmt >= 0 && stmt < len(found) {
			found[stmt] = true
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	var stmts []string
	for i, c := range checks {
		if found[i] {
			stmts = append(stmts, rawQuery(c.from, c.lo, c.hi, c.conds))
		}
	}
	out := make(map[tsstore.CellID]tsstore.Agg)
	if len(stmts) == 0 {
		return out, nil
	}
	w := s.width.Milliseconds()
	err = s.influxQL(ctx, strings.Join(stmts, "; "), func(_ int, se *respSeries, r row) error {
		start := r.t - mod(r.t, w)
		ls, writer := labelsOfTags(se.Tags)
		out[tsstore.CellID{Series: tsstore.SeriesKey(se.Name, ls), Start: start, Writer: writer, Seq: uint32(r.t - start)}] = r.agg
		return nil
	})
	return out, err
}

// seriesConds returns a condition naming the series of cs (a superset: a
// series with more labels matches too, and the legacy writer's condition,
// which names no writer, every writer's series of its labels), or nil when
// there are too many or one has no labels.
func seriesConds(cs []*tsstore.Cell) []string {
	seen := map[string]bool{}
	var alts []string
	for _, c := range cs {
		if len(c.Labels) == 0 {
			return nil
		}
		k := c.Labels.Key() + c.Writer // injective: a key ends with 0xff, a writer has none
		if seen[k] {
			continue
		}
		seen[k] = true
		if len(seen) > checkMaxSeries {
			return nil
		}
		var and []string
		for _, l := range c.Labels {
			and = append(and, quoteIdent(tagKey(l.Name))+"::tag = "+quoteString(encodeTagValue(l.Value)))
		}
		if c.Writer != "" {
			and = append(and, quoteIdent(writerTag)+"::tag = "+quoteString(c.Writer))
		}
		alts = append(alts, "("+strings.Join(and, " AND ")+")")
	}
	return []string{"(" + strings.Join(alts, " OR ") + ")"}
}

func mod(a, b int64) int64 {
	m := a % b
	if m < 0 {
		m += b
	}
	return m
}

// timeRange returns the range [lo, hi] (ms, inclusive) of the points of the
// cells whose Start is in [from, to), clamped to what InfluxDB stores; ok
// is false when it is empty. A cell's point is at Start+Seq < Start+width,
// so Start >= from exactly when the point is at or after from rounded up
// to a cell boundary, and likewise for to.
func (s *Store) timeRange(from, to int64) (lo, hi int64, ok bool) {
	w := s.width.Milliseconds()
	lo = from + mod(-from, w)
	hi = min(to+mod(-to, w)-1, maxInfluxMillis)
	return lo, hi, lo <= hi
}

// Cells returns the stored cells selected by sel.
func (s *Store) Cells(ctx context.Context, sel tsstore.Selector) ([]tsstore.Cell, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("influx: cells: %w", err)
	}
	if err := sel.Validate(); err != nil {
		return nil, fmt.Errorf("influx: cells: %w", err)
	}
	if err := s.begin("cells"); err != nil {
		return nil, err
	}
	defer s.end()
	var out []tsstore.Cell
	err := s.eachCell(ctx, &sel, func(c tsstore.Cell) { out = append(out, c) })
	if err != nil {
		return nil, fmt.Errorf("influx: cells: %w", err)
	}
	return out, nil
}

// eachCell calls fn for every stored cell selected by sel (validated),
// through InfluxQL or Flux.
func (s *Store) eachCell(ctx context.Context, sel *tsstore.Selector, fn func(tsstore.Cell)) error {
	lo, hi, ok := s.timeRange(sel.From, sel.To)
	if !ok {
		return nil
	}
	w := s.width.Milliseconds()
	emit := func(metric string, ls tsstore.Labels, writer string, t int64, a tsstore.Agg) {
		if !tsstore.MatchLabels(sel.Matchers, ls) {
			return
		}
		start := t - mod(t, w)
		fn(tsstore.Cell{Metric: metric, Labels: ls, Start: start, Writer: writer, Seq: uint32(t - start), Agg: a})
	}
	if s.opts.QueryLanguage == Flux {
		return s.fluxCells(ctx, sel.Metric, sel.Matchers, lo, hi, emit)
	}
	var conds []string
	for i := range sel.Matchers {
		if c, _, ok := influxQLCond(&sel.Matchers[i]); ok {
			conds = append(conds, c)
		}
	}
	var lastTags map[string]string
	var ls tsstore.Labels
	var writer string
	return s.influxQL(ctx, rawQuery(s.from+quoteIdent(sel.Metric), lo, hi, conds), func(_ int, se *respSeries, r row) error {
		if lastTags == nil || !sameTags(lastTags, se.Tags) {
			lastTags = se.Tags
			ls, writer = labelsOfTags(se.Tags)
		}
		emit(sel.Metric, ls, writer, r.t, r.agg)
		return nil
	})
}

func sameTags(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if bv, ok := b[k]; !ok || bv != v {
			return false
		}
	}
	return true
}

// maxPushdownBuckets bounds the buckets of a query that InfluxDB
// aggregates itself (GROUP BY time); beyond it the store aggregates.
const maxPushdownBuckets = 100_000

// Query answers q. When every matcher is an equality with a non-empty
// value (so that InfluxDB selects exactly q's series) and the step is wider
// than a cell, InfluxDB aggregates (GROUP BY time with an offset that puts
// bucket edges on the points' cell boundaries); otherwise the store reads
// the cells and aggregates them with tsstore.ResultBuilder.
func (s *Store) Query(ctx context.Context, q tsstore.Query) (*tsstore.Result, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("influx: query: %w", err)
	}
	if err := q.Validate(s.width); err != nil {
		return nil, fmt.Errorf("influx: query: %w", err)
	}
	if err := s.begin("query"); err != nil {
		return nil, err
	}
	defer s.end()
	b := tsstore.NewResultBuilder(&q)
	var err error
	if stmt, shift, ok := s.pushdown(&q); ok {
		var lastTags map[string]string
		var ls tsstore.Labels
		err = s.influxQL(ctx, stmt, func(_ int, se *respSeries, r row) error {
			if lastTags == nil || !sameTags(lastTags, se.Tags) {
				// The writers' series of the same labels add up in b.
				lastTags = se.Tags
				ls, _ = labelsOfTags(se.Tags)
			}
			b.Add(ls, r.t-shift, r.agg)
			return nil
		})
	} else {
		sel := q.Selector()
		err = s.eachCell(ctx, &sel, func(c tsstore.Cell) { b.Add(c.Labels, c.Start, c.Agg) })
	}
	if err != nil {
		return nil, fmt.Errorf("influx: query: %w", err)
	}
	return b.Result(), nil
}

// pushdown returns the aggregating InfluxQL statement for q and the shift
// from its bucket times to q's bucket starts, or ok false when q must be
// aggregated by the store.
func (s *Store) pushdown(q *tsstore.Query) (stmt string, shift int64, ok bool) {
	if s.opts.QueryLanguage != InfluxQL || q.Step <= s.width {
		return "", 0, false
	}
	lo, hi, nonEmpty := s.timeRange(q.From, q.To)
	if !nonEmpty {
		return "", 0, false
	}
	step := q.Step.Milliseconds()
	if (hi-lo)/step > maxPushdownBuckets {
		return "", 0, false
	}
	var conds []string
	for i := range q.Matchers {
		c, exact, ok := influxQLCond(&q.Matchers[i])
		if !ok || !exact {
			return "", 0, false
		}
		conds = append(conds, c)
	}
	// Bucket k of q holds the cells with Start in [From+k*step, ...), that
	// is the points in [lo+k*step, ...): buckets aligned to lo.
	return aggQuery(s.from+quoteIdent(q.Metric), lo, hi, step, mod(lo, step), conds, q.GroupBy), lo - q.From, true
}

// influxQL runs statements over /query (POST, chunked, epoch=ms) and calls
// fn for every row of the answer. Transport errors and 5xx are of kind
// ErrUnavailable, a 400 (a statement InfluxDB cannot parse) ErrInvalid,
// statement errors (such as "database not found") ErrUnavailable.
func (s *Store) influxQL(ctx context.Context, stmts string, fn func(stmt int, se *respSeries, r row) error) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	form := url.Values{"q": {stmts}, "db": {s.opts.Database}, "epoch": {"ms"}, "chunked": {"true"}, "chunk_size": {"10000"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.queryURL, strings.NewReader(form.Encode()))
	if err != nil {
		return tsstore.Errorf(tsstore.ErrInvalid, "influxql: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	s.authorize(req)
	resp, err := s.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("influxql query: %w", err)
		}
		return tsstore.Errorf(tsstore.ErrUnavailable, "influxql query to %s: %w", s.queryURL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		f := failureOf(resp)
		kind := tsstore.ErrUnavailable
		if resp.StatusCode == http.StatusBadRequest {
			kind = tsstore.ErrInvalid
		}
		return tsstore.Errorf(kind, "influxql query %.200q: %w", stmts, f)
	}
	err = readQueryResponse(resp.Body, fn)
	_, _ = io.Copy(io.Discard, resp.Body)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("influxql query: %w", ctx.Err())
		}
		return tsstore.Errorf(tsstore.ErrUnavailable, "influxql query %.200q: %w", stmts, err)
	}
	return nil
}
