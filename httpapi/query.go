package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/writeback"
)

// labelParam prefixes the query parameters that filter by a label.
const labelParam = "label."

// metricResponse is the answer of GET /v1/metrics/{metric}.
type metricResponse struct {
	Metric   string         `json:"metric"`
	Merchant string         `json:"merchant"`
	From     time.Time      `json:"from"`
	To       time.Time      `json:"to"`
	Step     string         `json:"step"`
	Agg      string         `json:"agg"`
	Series   []seriesOutput `json:"series"`
	// Partial reports an answer without the cells of some peers (other
	// servers of a cluster that did not answer), named in MissingPeers.
	Partial      bool     `json:"partial,omitempty"`
	MissingPeers []string `json:"missing_peers,omitempty"`
}

// DetailedEngine is an Engine that names the peers an answer lacks
// (*writeback.Engine with Options.Peers): GET /v1/metrics then says
// "partial": true and lists them in "missing_peers".
type DetailedEngine interface {
	QueryDetailed(ctx context.Context, q tsstore.Query) (*tsstore.Result, []string, error)
}

var _ DetailedEngine = (*writeback.Engine)(nil)

type seriesOutput struct {
	Labels map[string]string `json:"labels"`
	// Total is the aggregate over all the series' buckets.
	Total  float64       `json:"total"`
	Points []pointOutput `json:"points"`
}

type pointOutput struct {
	Time  time.Time `json:"time"`
	Value float64   `json:"value"`
}

// aggs are the aggregations a query may ask for.
var aggs = map[string]func(tsstore.Agg) float64{
	"sum":   func(a tsstore.Agg) float64 { return a.Sum },
	"count": func(a tsstore.Agg) float64 { return float64(a.Count) },
	"mean":  tsstore.Agg.Mean,
	"min":   func(a tsstore.Agg) float64 { return a.Min },
	"max":   func(a tsstore.Agg) float64 { return a.Max },
}

// getMetric is GET /v1/metrics/{metric}: the merchant's series of a metric,
// with filters label.<name>=<value>, range from/to, step, agg and group_by.
// The matcher merchant=<the token's merchant> is always added.
func (a *API) getMetric(w http.ResponseWriter, r *http.Request, merchant string) {
	metric := r.PathValue("metric")
	q, agg, err := parseMetricQuery(metric, r.URL.Query(), merchant, a.eng.CellWidth(), a.now())
	if err != nil {
		Error(w, http.StatusBadRequest, err.Error())
		return
	}
	var res *tsstore.Result
	var missing []string
	if de, ok := a.eng.(DetailedEngine); ok {
		res, missing, err = de.QueryDetailed(r.Context(), q)
	} else {
		res, err = a.eng.Query(r.Context(), q)
	}
	if err != nil {
		a.WriteEngineError(w, "query", err)
		return
	}
	value := aggs[agg]
	out := metricResponse{
		Metric: metric, Merchant: merchant, From: tsstore.TimeOf(q.From), To: tsstore.TimeOf(q.To),
		Step: q.Step.String(), Agg: agg, Series: []seriesOutput{},
		Partial: len(missing) > 0, MissingPeers: missing,
	}
	for _, s := range res.Series {
		so := seriesOutput{Labels: s.Labels.Map(), Points: make([]pointOutput, 0, len(s.Buckets))}
		var total tsstore.Agg
		for _, b := range s.Buckets {
			total.Merge(b.Agg)
			so.Points = append(so.Points, pointOutput{Time: tsstore.TimeOf(b.Start), Value: value(b.Agg)})
		}
		so.Total = value(total)
		out.Series = append(out.Series, so)
	}
	WriteJSON(w, http.StatusOK, out)
}

// parseMetricQuery builds the query of GET /v1/metrics/{metric}. Errors are
// of kind tsstore.ErrInvalid and name the parameter.
func parseMetricQuery(metric string, v url.Values, merchant string, width time.Duration, now time.Time) (tsstore.Query, string, error) {
	q := tsstore.Query{Metric: metric}
	if err := tsstore.ValidateMetric(metric); err != nil {
		return q, "", tsstore.Errorf(tsstore.ErrInvalid, "metric: %w", err)
	}
	agg := v.Get("agg")
	if agg == "" {
		agg = "sum"
	}
	if aggs[agg] == nil {
		return q, "", tsstore.Errorf(tsstore.ErrInvalid, "agg %q: want sum, count, mean, min or max", agg)
	}
	q.Step = width
	if s := v.Get("step"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 || d%width != 0 {
			return q, "", tsstore.Errorf(tsstore.ErrInvalid, "step %q: want a positive multiple of the cell width %v, such as 1m, 1h or 24h", s, width)
		}
		q.Step = d
	}
	to := tsstore.CellStart(tsstore.Millis(now), q.Step) + q.Step.Milliseconds()
	if s := v.Get("to"); s != "" {
		t, err := ParseTime(s, now)
		if err != nil {
			return q, "", tsstore.Errorf(tsstore.ErrInvalid, "to: %w", err)
		}
		to = t
		if IsRelativeTime(s) { // round up to the step
			to = tsstore.CellStart(t-1, q.Step) + q.Step.Milliseconds()
		}
	}
	from := to - max(time.Hour, q.Step).Milliseconds()
	if s := v.Get("from"); s != "" {
		t, err := ParseTime(s, now)
		if err != nil {
			return q, "", tsstore.Errorf(tsstore.ErrInvalid, "from: %w", err)
		}
		from = t
		if IsRelativeTime(s) { // round down to the step
			from = tsstore.CellStart(t, q.Step)
		}
	}
	if from >= to {
		return q, "", tsstore.Errorf(tsstore.ErrInvalid, "from %s is not before to %s", tsstore.TimeOf(from).Format(time.RFC3339), tsstore.TimeOf(to).Format(time.RFC3339))
	}
	q.From, q.To = from, to

	names := make([]string, 0, len(v))
	for k := range v {
		names = append(names, k)
	}
	sort.Strings(names)
	q.Matchers = append(q.Matchers, tsstore.Matcher{Type: tsstore.MatchEqual, Name: "merchant", Value: merchant})
	for _, k := range names {
		switch k {
		case "agg", "step", "from", "to", "group_by":
			continue
		}
		name, ok := strings.CutPrefix(k, labelParam)
		if !ok {
			return q, "", tsstore.Errorf(tsstore.ErrInvalid, "unknown parameter %q (filters are label.<name>=<value>)", k)
		}
		if len(v[k]) != 1 {
			return q, "", tsstore.Errorf(tsstore.ErrInvalid, "parameter %q given %d times", k, len(v[k]))
		}
		val := v.Get(k)
		if name == "merchant" {
			if val != merchant {
				return q, "", tsstore.Errorf(tsstore.ErrInvalid, "label.merchant=%q: a token reads only its own merchant %q", val, merchant)
			}
			continue
		}
		m, err := tsstore.NewMatcher(tsstore.MatchEqual, name, val)
		if err != nil {
			return q, "", tsstore.Errorf(tsstore.ErrInvalid, "%s: %w", k, err)
		}
		q.Matchers = append(q.Matchers, m)
	}
	if gb, ok := v["group_by"]; ok {
		q.GroupBy = []string{}
		for _, g := range gb {
			for _, l := range strings.Split(g, ",") {
				if l = strings.TrimSpace(l); l != "" {
					q.GroupBy = append(q.GroupBy, l)
				}
			}
		}
	}
	if err := q.Validate(width); err != nil {
		return q, "", err
	}
	return q, agg, nil
}

// IsRelativeTime reports whether a time that ParseTime reads is relative to
// now ("now-1h", "-1h"); GET /v1/metrics rounds such times to the step so
// that buckets start on its multiples.
func IsRelativeTime(s string) bool { return strings.HasPrefix(s, "now") || strings.HasPrefix(s, "-") }

// ParseTime reads a time parameter, in milliseconds since the epoch: RFC
// 3339, integer milliseconds, "now", or now minus a duration ("-1h",
// "now-1h"). The error quotes s.
func ParseTime(s string, now time.Time) (int64, error) {
	if s == "now" {
		return tsstore.Millis(now), nil
	}
	if rel, ok := strings.CutPrefix(s, "now"); ok || strings.HasPrefix(s, "-") {
		if ok {
			s = rel
		}
		d, err := time.ParseDuration(s)
		if err == nil && d <= 0 {
			return tsstore.Millis(now.Add(d)), nil
		}
		return 0, fmt.Errorf("%q: want RFC 3339, milliseconds, now or now-<duration>", s)
	}
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		return ms, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return 0, fmt.Errorf("%q: want RFC 3339, milliseconds, now or now-<duration>", s)
	}
	return tsstore.Millis(t), nil
}
