package promremote

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/hourglass-io/hourglass/internal/httpretry"
	"github.com/hourglass-io/hourglass/tsstore"
)

// comps holds the stored components of one sample time of a series.
type comps struct {
	v   [numComps]float64
	has uint8 // bit k set: v[k] is stored
}

const allComps = 1<<numComps - 1

// set records component k; a second value for the same time (an engine
// that keeps duplicates) keeps the larger, as VictoriaMetrics' dedup does.
func (c *comps) set(k int, v float64) {
	if c.has&(1<<k) != 0 && c.v[k] >= v {
		return
	}
	c.v[k] = v
	c.has |= 1 << k
}

// storedKey is a sample time of a series (the key of seriesKey).
type storedKey struct {
	series string
	ts     int64
}

// storedCell is what a read found at one sample time of a series.
type storedCell struct {
	metric string
	labels tsstore.Labels
	writer string
	comps
}

// Cells returns the stored cells selected by sel, every partial on its own
// (with its Writer and Seq). A cell some of whose four samples are missing
// (a write that failed half-way, before its retry) is left out.
func (s *Store) Cells(ctx context.Context, sel tsstore.Selector) ([]tsstore.Cell, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("promremote: cells: %w", err)
	}
	if err := sel.Validate(); err != nil {
		return nil, fmt.Errorf("promremote: cells: %w", err)
	}
	if err := s.begin("cells"); err != nil {
		return nil, err
	}
	defer s.end()
	var out []tsstore.Cell
	err := s.eachCell(ctx, &sel, func(c tsstore.Cell) { out = append(out, c) })
	if err != nil {
		return nil, fmt.Errorf("promremote: cells: %w", err)
	}
	return out, nil
}

// Query answers q by reading its cells and aggregating them here, exactly
// (see tsstore.Aggregate).
func (s *Store) Query(ctx context.Context, q tsstore.Query) (*tsstore.Result, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("promremote: query: %w", err)
	}
	if err := q.Validate(s.width); err != nil {
		return nil, fmt.Errorf("promremote: query: %w", err)
	}
	if err := s.begin("query"); err != nil {
		return nil, err
	}
	defer s.end()
	b := tsstore.NewResultBuilder(&q)
	sel := q.Selector()
	err := s.eachCell(ctx, &sel, func(c tsstore.Cell) { b.Add(c.Labels, c.Start, c.Agg) })
	if err != nil {
		return nil, fmt.Errorf("promremote: query: %w", err)
	}
	return b.Result(), nil
}

// eachCell calls fn for every complete stored cell selected by sel.
func (s *Store) eachCell(ctx context.Context, sel *tsstore.Selector, fn func(tsstore.Cell)) error {
	text, ok := s.selector(sel.Metric, sel.Matchers)
	if !ok {
		return nil
	}
	// A cell's samples are at Start+Seq, Seq < width.
	to := min(sel.To+s.widthMs-2, tsstore.MaxTimestamp-1)
	found := map[storedKey]*storedCell{}
	err := s.fetch(ctx, text, sel.From, to, func(ps *promSeries, ts []int64, vs []float64) {
		if ps.metric != sel.Metric {
			return
		}
		for i, t := range ts {
			if t < sel.From || t > to {
				continue
			}
			k := storedKey{ps.key, t}
			sc := found[k]
			if sc == nil {
				sc = &storedCell{metric: ps.metric, labels: ps.labels, writer: ps.writer}
				found[k] = sc
			}
			sc.set(ps.comp, vs[i])
		}
	})
	if err != nil {
		return err
	}
	for k, sc := range found {
		start := tsstore.CellStart(k.ts, s.width)
		if sc.has != allComps || start < sel.From || start >= sel.To || sc.v[0] < 1 {
			continue
		}
		fn(tsstore.Cell{
			Metric: sc.metric, Labels: sc.labels.Copy(), Start: start, Writer: sc.writer, Seq: uint32(k.ts - start),
			Agg: tsstore.Agg{Count: uint64(sc.v[0]), Sum: sc.v[1], Min: sc.v[2], Max: sc.v[3]},
		})
	}
	return nil
}

// seriesRead is a series whose stored samples in [from, to] a Write reads
// back; establish: the series has no bound yet, newest becomes it.
type seriesRead struct {
	cell      *tsstore.Cell
	key       string
	stripe    int
	from, to  int64
	establish bool
	newest    int64
}

// Conflict-check reads name at most readGroupSeries series of one metric
// in one selector, of at most readGroupBytes.
const (
	readGroupSeries = 32
	readGroupBytes  = 4096
)

// readStored reads the stored samples of the series of reads in their
// ranges, and sets the newest stored time (or from-1) of the series to
// establish.
func (s *Store) readStored(ctx context.Context, reads []seriesRead) (map[storedKey]*comps, error) {
	byMetric := map[string][]int{}
	for i := range reads {
		reads[i].newest = reads[i].from - 1
		byMetric[reads[i].cell.Metric] = append(byMetric[reads[i].cell.Metric], i)
	}
	stored := map[storedKey]*comps{}
	for metric, idx := range byMetric {
		for len(idx) > 0 {
			n, size := 0, 0
			for n < len(idx) && n < readGroupSeries && (n == 0 || size < readGroupBytes) {
				size += len(reads[idx[n]].key)
				n++
			}
			group := idx[:n]
			idx = idx[n:]
			byKey := make(map[string]*seriesRead, len(group))
			from, to := int64(tsstore.MaxTimestamp), int64(0)
			cells := make([]*tsstore.Cell, len(group))
			for j, i := range group {
				r := &reads[i]
				byKey[r.key] = r
				from, to = min(from, r.from), max(to, r.to)
				cells[j] = r.cell
			}
			err := s.fetch(ctx, s.groupSelector(metric, cells), from, to, func(ps *promSeries, ts []int64, vs []float64) {
				r := byKey[ps.key]
				if r == nil {
					return
				}
				for i, t := range ts {
					if t < r.from || t > r.to {
						continue
					}
					r.newest = max(r.newest, t)
					k := storedKey{ps.key, t}
					c := stored[k]
					if c == nil {
						c = &comps{}
						stored[k] = c
					}
					c.set(ps.comp, vs[i])
				}
			})
			if err != nil {
				return nil, err
			}
		}
	}
	return stored, nil
}

// promSeries is a series read from the engine, decoded.
type promSeries struct {
	metric string
	comp   int
	labels tsstore.Labels
	writer string
	key    string // seriesKey of (metric, labels, writer)
}

// decode decodes an engine's label set; ok is false for a series that is
// not one of a cell's four.
func (s *Store) decode(m map[string]string) (ps promSeries, ok bool) {
	name := m[nameLabel]
	i := strings.LastIndexByte(name, ':')
	if i <= 0 {
		return ps, false
	}
	ps.metric, ps.comp = name[:i], slices.Index(components[:], name[i+1:])
	if ps.comp < 0 {
		return ps, false
	}
	ps.writer = m[writerLabel]
	ps.labels = make(tsstore.Labels, 0, len(m))
	for n, v := range m {
		if n == nameLabel || n == writerLabel || s.extKeys[n] {
			continue
		}
		ps.labels = append(ps.labels, tsstore.Label{Name: n, Value: v})
	}
	slices.SortFunc(ps.labels, func(a, b tsstore.Label) int { return strings.Compare(a.Name, b.Name) })
	ps.key = tsstore.SeriesKey(ps.metric, ps.labels) + "\xfc" + ps.writer
	return ps, true
}

// selector returns the series selector of a metric's four series with the
// matchers, or false when no series can match. Matchers on names the
// engine has but cells never show (__-names, external labels) are decided
// here against the empty value, as for a missing label.
func (s *Store) selector(metric string, ms []tsstore.Matcher) (string, bool) {
	var b strings.Builder
	s.selectorStart(&b, metric)
	for i := range ms {
		m := &ms[i]
		if strings.HasPrefix(m.Name, "__") || s.extKeys[m.Name] {
			if !m.Matches("") {
				return "", false
			}
			continue
		}
		b.WriteByte(',')
		b.WriteString(m.Name)
		b.WriteString(m.Type.String())
		b.WriteString(quote(m.Value))
	}
	b.WriteByte('}')
	return b.String(), true
}

func (s *Store) selectorStart(b *strings.Builder, metric string) {
	b.WriteString(`{__name__=~"`)
	b.WriteString(metric)
	b.WriteString(`:(count|sum|min|max)"`)
	for _, l := range s.opts.ExternalLabels {
		b.WriteByte(',')
		b.WriteString(l.Name)
		b.WriteByte('=')
		b.WriteString(quote(l.Value))
	}
}

// groupSelector returns a selector of the series of cells (all of one
// metric), and perhaps a few more: per label name, a regexp of the values
// the cells have (and of the empty value when some cell lacks the label).
func (s *Store) groupSelector(metric string, cells []*tsstore.Cell) string {
	values := map[string][]string{}
	for _, c := range cells {
		for _, l := range c.Labels {
			if !slices.Contains(values[l.Name], l.Value) {
				values[l.Name] = append(values[l.Name], l.Value)
			}
		}
		if !slices.Contains(values[writerLabel], c.Writer) {
			values[writerLabel] = append(values[writerLabel], c.Writer)
		}
	}
	names := make([]string, 0, len(values))
	for n := range values {
		names = append(names, n)
	}
	slices.Sort(names)
	var b strings.Builder
	s.selectorStart(&b, metric)
	for _, n := range names {
		vs := values[n]
		for _, c := range cells {
			if n != writerLabel && !c.Labels.Has(n) && !slices.Contains(vs, "") {
				vs = append(vs, "")
			}
		}
		alts := make([]string, len(vs))
		for i, v := range vs {
			alts[i] = regexp.QuoteMeta(v)
		}
		b.WriteByte(',')
		b.WriteString(n)
		b.WriteString("=~")
		b.WriteString(quote(strings.Join(alts, "|")))
	}
	b.WriteByte('}')
	return b.String()
}

// quote returns v as a PromQL (and MetricsQL) double-quoted string.
func quote(v string) string {
	var b strings.Builder
	b.Grow(len(v) + 2)
	b.WriteByte('"')
	for _, r := range v {
		switch r {
		case '"', '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// fetch reads the samples of the series matching selector with times in
// [from, to] (ms), in requests of at most the read span, and calls fn for
// each series of each answer (a series may come once per request).
func (s *Store) fetch(ctx context.Context, selector string, from, to int64, fn func(ps *promSeries, ts []int64, vs []float64)) error {
	for lo := from; lo <= to; {
		hi := to
		if hi-lo >= s.readSpan {
			hi = lo + s.readSpan - 1
		}
		var err error
		if s.readAPI == ReadExport {
			err = s.export(ctx, selector, lo, hi, fn)
		} else {
			err = s.query(ctx, selector, lo, hi, fn)
		}
		if err != nil {
			return err
		}
		if hi == to {
			break
		}
		lo = hi + 1
	}
	return nil
}

// seconds formats ms as the decimal seconds the HTTP API takes.
func seconds(ms int64) string { return fmt.Sprintf("%d.%03d", ms/1000, ms%1000) }

// readError classifies the failure of a read request: ErrUnavailable,
// whatever the answer, since the Store builds every read itself (a 4xx
// means a wrong URL, credentials or engine limit, not bad input); a
// conflict check that cannot read must not look like a bad cell.
func readError(u string, err error) error {
	var f *httpretry.Failure
	if errors.As(err, &f) {
		return tsstore.Errorf(tsstore.ErrUnavailable, "reading %s: %w", u, f)
	}
	return fmt.Errorf("reading %s: %w", u, err)
}

// exportLine is one line of /api/v1/export's answer.
type exportLine struct {
	Metric     map[string]string `json:"metric"`
	Values     []float64         `json:"values"`
	Timestamps []int64           `json:"timestamps"`
}

// export reads [from, to] through /api/v1/export (VictoriaMetrics).
func (s *Store) export(ctx context.Context, selector string, from, to int64, fn func(*promSeries, []int64, []float64)) error {
	u := s.readPrefix.JoinPath("api/v1/export").String()
	form := url.Values{"match[]": {selector}, "start": {seconds(from)}, "end": {seconds(to)}}
	body, err := s.do(ctx, request{method: http.MethodPost, url: u, body: []byte(form.Encode()), header: formHeader})
	if err != nil {
		return readError(u, err)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	for dec.More() {
		var line exportLine
		if err := dec.Decode(&line); err != nil {
			return tsstore.Errorf(tsstore.ErrUnavailable, "reading %s: malformed answer: %w", u, err)
		}
		if len(line.Values) != len(line.Timestamps) {
			return tsstore.Errorf(tsstore.ErrUnavailable, "reading %s: malformed answer: %d values and %d timestamps", u, len(line.Values), len(line.Timestamps))
		}
		if ps, ok := s.decode(line.Metric); ok {
			fn(&ps, line.Timestamps, line.Values)
		}
	}
	return nil
}

var formHeader = http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}

// queryAnswer is the answer of /api/v1/query to a range selector.
type queryAnswer struct {
	Status string `json:"status"`
	Error  string `json:"error"`
	Data   struct {
		ResultType string `json:"resultType"`
		Result     []struct {
			Metric map[string]string    `json:"metric"`
			Values [][2]json.RawMessage `json:"values"`
		} `json:"result"`
	} `json:"data"`
}

// query reads [from, to] with an instant query of a range selector at to.
func (s *Store) query(ctx context.Context, selector string, from, to int64, fn func(*promSeries, []int64, []float64)) error {
	u := s.readPrefix.JoinPath("api/v1/query").String()
	expr := selector + "[" + strconv.FormatInt(to-from+1, 10) + "ms]"
	form := url.Values{"query": {expr}, "time": {seconds(to)}}
	body, err := s.do(ctx, request{method: http.MethodPost, url: u, body: []byte(form.Encode()), header: formHeader})
	if err != nil {
		return readError(u, err)
	}
	var a queryAnswer
	if err := json.Unmarshal(body, &a); err != nil {
		return tsstore.Errorf(tsstore.ErrUnavailable, "reading %s: malformed answer: %w", u, err)
	}
	if a.Status != "success" || a.Data.ResultType != "matrix" {
		return tsstore.Errorf(tsstore.ErrUnavailable, "reading %s: answer %q of type %q: %s", u, a.Status, a.Data.ResultType, a.Error)
	}
	var ts []int64
	var vs []float64
	for _, r := range a.Data.Result {
		ps, ok := s.decode(r.Metric)
		if !ok {
			continue
		}
		ts, vs = ts[:0], vs[:0]
		for _, pair := range r.Values {
			t, err1 := parseMillis(string(pair[0]))
			v, err2 := strconv.ParseFloat(strings.Trim(string(pair[1]), `"`), 64)
			if err := errors.Join(err1, err2); err != nil {
				return tsstore.Errorf(tsstore.ErrUnavailable, "reading %s: malformed sample %s: %w", u, pair, err)
			}
			ts, vs = append(ts, t), append(vs, v)
		}
		fn(&ps, ts, vs)
	}
	return nil
}

// parseMillis parses decimal seconds with at most three decimals (as the
// HTTP API writes sample times) into ms, exactly.
func parseMillis(sec string) (int64, error) {
	whole, frac, _ := strings.Cut(sec, ".")
	if len(frac) > 3 {
		return 0, fmt.Errorf("time %q has more than millisecond precision", sec)
	}
	w, err := strconv.ParseInt(whole, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("time %q: %w", sec, err)
	}
	f := int64(0)
	if frac != "" {
		if f, err = strconv.ParseInt((frac + "00")[:3], 10, 64); err != nil {
			return 0, fmt.Errorf("time %q: %w", sec, err)
		}
	}
	return w*1000 + f, nil
}
