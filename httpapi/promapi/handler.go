package promapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/storage"
)

// Defaults of Options.
const (
	// DefaultTimeout bounds the evaluation of one query.
	DefaultTimeout = 30 * time.Second
	// DefaultMaxPoints bounds the steps of a range query, as Prometheus
	// does.
	DefaultMaxPoints = 11_000
	// DefaultLabelRange is the time range of labels, label values and
	// series requests without start: the last day before end (Prometheus
	// reads all time, which for a store of years is all of it).
	DefaultLabelRange = 24 * time.Hour
	// DefaultLookbackDelta is how far back an instant selector looks for
	// a series' latest sample: Prometheus' default.
	DefaultLookbackDelta = 5 * time.Minute
)

// Options configures a Handler. A nil *Options means the defaults, which
// authorize no request; every zero field means its default.
type Options struct {
	// Authorize tells who sends a request: a merchant (every selector is
	// then restricted to merchant=<merchant>) or an admin (sees all
	// merchants). An error, or neither, answers 401. nil authorizes no
	// request.
	Authorize func(r *http.Request) (merchant string, admin bool, err error)
	// Metrics lists the metrics that label discovery and selectors without
	// an exact series name look at (see StorageOptions.Metrics); nil means
	// none.
	Metrics func(ctx context.Context) ([]string, error)
	// MaxSamples bounds the samples a query loads and the PromQL engine
	// holds; 0 means DefaultMaxSamples.
	MaxSamples int
	// MaxSeries bounds the series a query selects; 0 means
	// DefaultMaxSeries.
	MaxSeries int
	// Timeout bounds the evaluation of a query (a request's timeout
	// parameter may shorten it); 0 means DefaultTimeout.
	Timeout time.Duration
	// MaxPoints bounds the steps of a range query; 0 means
	// DefaultMaxPoints.
	MaxPoints int
	// LabelRange is the range of label and series requests without start;
	// 0 means DefaultLabelRange.
	LabelRange time.Duration
	// LookbackDelta is the lookback of instant selectors; 0 means
	// DefaultLookbackDelta.
	LookbackDelta time.Duration
	// Registerer receives the PromQL engine's metrics; nil means none.
	Registerer prometheus.Registerer
	// Logger receives failed requests; nil means slog.Default().
	Logger *slog.Logger
	// Now is the clock of requests without a time; nil means time.Now.
	Now func() time.Time
}

// Handler serves the Prometheus HTTP API (/api/v1/query, query_range,
// labels, label/{name}/values, series, metadata, status/buildinfo,
// query_exemplars) over a CellSource, on GET and POST (form body), with
// Prometheus' JSON envelope and error types. Mount it at the root of a
// server or under "/api/v1/". Safe for concurrent use.
type Handler struct {
	opts    Options
	storage *Storage
	engine  *promql.Engine
	parser  parser.Parser
	mux     *http.ServeMux
}

var _ http.Handler = (*Handler)(nil)

// NewHandler returns the handler over src.
func NewHandler(src CellSource, opts *Options) *Handler {
	h := &Handler{}
	if opts != nil {
		h.opts = *opts
	}
	o := &h.opts
	if o.MaxSamples <= 0 {
		o.MaxSamples = DefaultMaxSamples
	}
	if o.MaxSeries <= 0 {
		o.MaxSeries = DefaultMaxSeries
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.MaxPoints <= 0 {
		o.MaxPoints = DefaultMaxPoints
	}
	if o.LabelRange <= 0 {
		o.LabelRange = DefaultLabelRange
	}
	if o.LookbackDelta <= 0 {
		o.LookbackDelta = DefaultLookbackDelta
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	h.storage = NewStorage(src, &StorageOptions{Metrics: o.Metrics, MaxSamples: o.MaxSamples, MaxSeries: o.MaxSeries})
	h.parser = parser.NewParser(parser.Options{})
	h.engine = promql.NewEngine(promql.EngineOpts{
		Logger:               o.Logger,
		Reg:                  o.Registerer,
		MaxSamples:           o.MaxSamples,
		Timeout:              o.Timeout,
		LookbackDelta:        o.LookbackDelta,
		EnableAtModifier:     true,
		EnableNegativeOffset: true,
		Parser:               h.parser,
	})
	h.mux = http.NewServeMux()
	for path, f := range map[string]func(*http.Request, *access) (any, error){
		"/api/v1/query":               h.query,
		"/api/v1/query_range":         h.queryRange,
		"/api/v1/labels":              h.labelNames,
		"/api/v1/label/{name}/values": h.labelValues,
		"/api/v1/series":              h.series,
		"/api/v1/metadata":            h.metadata,
		"/api/v1/query_exemplars":     h.exemplars,
	} {
		h.mux.Handle("GET "+path, h.serve(f))
		h.mux.Handle("POST "+path, h.serve(f))
	}
	h.mux.Handle("GET /api/v1/status/buildinfo", h.serve(h.buildInfo))
	return h
}

// ServeHTTP answers a request of the API.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// access is what a request may read: one merchant's series, or all.
type access struct {
	merchant string
	admin    bool
}

// storageFor returns the storage the access may read.
func (h *Handler) storageFor(a *access) *Storage {
	if a.admin {
		return h.storage
	}
	return h.storage.ForMerchant(a.merchant)
}

// enforce restricts matcher sets to the access' merchant.
func (a *access) enforce(sets [][]*labels.Matcher) ([][]*labels.Matcher, error) {
	if a.admin {
		return sets, nil
	}
	out := make([][]*labels.Matcher, len(sets))
	for i, ms := range sets {
		var err error
		if out[i], err = EnforceMatchers(ms, a.merchant); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// serve wraps an endpoint: authorization, form parsing, the envelope.
func (h *Handler) serve(f func(*http.Request, *access) (any, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, err := h.authorize(r)
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Basic realm="hourglass"`)
			writeResponse(w, http.StatusUnauthorized, &response{Status: "error", ErrorType: "unauthorized", Error: err.Error()})
			return
		}
		if err := r.ParseForm(); err != nil {
			h.fail(w, r, badData(fmt.Errorf("parsing the form: %w", err)))
			return
		}
		data, err := f(r, a)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		resp := &response{Status: "success", Data: data}
		if qd, ok := data.(*queryData); ok {
			resp.Warnings, resp.Infos = qd.warnings, qd.infos
		}
		writeResponse(w, http.StatusOK, resp)
	})
}

func (h *Handler) authorize(r *http.Request) (*access, error) {
	if h.opts.Authorize == nil {
		return nil, errors.New("no authorization configured")
	}
	m, admin, err := h.opts.Authorize(r)
	switch {
	case err != nil:
		return nil, err
	case !admin && m == "":
		return nil, errors.New("missing or invalid token")
	}
	return &access{merchant: m, admin: admin}, nil
}

// fail answers err with its error type and status.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	typ, status := classify(err)
	if status == http.StatusInternalServerError {
		h.opts.Logger.Error("prometheus API request failed", "path", r.URL.Path, "err", err)
	}
	writeResponse(w, status, &response{Status: "error", ErrorType: typ, Error: err.Error()})
}

// queryData is the data of query and query_range answers.
type queryData struct {
	ResultType parser.ValueType `json:"resultType"`
	Result     json.RawMessage  `json:"result"`
	warnings   []string
	infos      []string
}

func (h *Handler) query(r *http.Request, a *access) (any, error) {
	ts, err := timeParam(r, "time", h.opts.Now())
	if err != nil {
		return nil, err
	}
	return h.run(r, a, func(ctx context.Context, qs string) (promql.Query, error) {
		return h.engine.NewInstantQuery(ctx, h.storageFor(a), nil, qs, ts)
	})
}

func (h *Handler) queryRange(r *http.Request, a *access) (any, error) {
	start, err := timeParam(r, "start", time.Time{})
	if err != nil {
		return nil, err
	}
	end, err := timeParam(r, "end", time.Time{})
	if err != nil {
		return nil, err
	}
	step, err := durationParam(r, "step")
	if err != nil {
		return nil, err
	}
	switch {
	case start.IsZero() || end.IsZero() || r.FormValue("step") == "":
		return nil, badData(errors.New("start, end and step are required"))
	case end.Before(start):
		return nil, badData(errors.New("end timestamp must not be before start time"))
	case step <= 0:
		return nil, badData(errors.New("zero or negative query resolution step widths are not accepted. Try a positive integer"))
	case end.Sub(start)/step > time.Duration(h.opts.MaxPoints):
		return nil, badData(fmt.Errorf("exceeded maximum resolution of %d points per timeseries. Try decreasing the query resolution (?step=XX)", h.opts.MaxPoints))
	}
	return h.run(r, a, func(ctx context.Context, qs string) (promql.Query, error) {
		return h.engine.NewRangeQuery(ctx, h.storageFor(a), nil, qs, start, end, step)
	})
}

// run evaluates the request's expression, restricted to the merchant of a,
// with the query newQuery makes of it, within the request's timeout.
func (h *Handler) run(r *http.Request, a *access, newQuery func(context.Context, string) (promql.Query, error)) (any, error) {
	ctx, cancel, err := h.timeout(r)
	if err != nil {
		return nil, err
	}
	defer cancel()
	qs, err := h.expr(r, a)
	if err != nil {
		return nil, err
	}
	qry, err := newQuery(ctx, qs)
	if err != nil {
		return nil, badData(fmt.Errorf("invalid parameter \"query\": %w", err))
	}
	return h.exec(ctx, qry, qs)
}

// expr returns the request's expression, restricted to the merchant of a.
func (h *Handler) expr(r *http.Request, a *access) (string, error) {
	qs := r.FormValue("query")
	if qs == "" {
		return "", badData(errors.New("invalid parameter \"query\": missing"))
	}
	if a.admin {
		return qs, nil
	}
	expr, err := h.parser.ParseExpr(qs)
	if err != nil {
		return "", badData(fmt.Errorf("invalid parameter \"query\": %w", err))
	}
	if err := EnforceExpr(expr, a.merchant); err != nil {
		return "", badData(err)
	}
	return expr.String(), nil
}

func (h *Handler) timeout(r *http.Request) (context.Context, context.CancelFunc, error) {
	d := h.opts.Timeout
	if s := r.FormValue("timeout"); s != "" {
		t, err := parseDuration(s)
		if err != nil || t <= 0 {
			return nil, nil, badData(fmt.Errorf("invalid parameter \"timeout\": %q", s))
		}
		d = min(d, t)
	}
	ctx, cancel := context.WithTimeout(r.Context(), d)
	return ctx, cancel, nil
}

func (h *Handler) exec(ctx context.Context, qry promql.Query, qs string) (any, error) {
	defer qry.Close()
	res := qry.Exec(ctx)
	if res.Err != nil {
		return nil, res.Err
	}
	v := res.Value
	switch r := v.(type) { // [] rather than null, as Prometheus answers
	case promql.Matrix:
		if r == nil {
			v = promql.Matrix{}
		}
	case promql.Vector:
		if r == nil {
			v = promql.Vector{}
		}
	}
	// Encoded before Close, which hands the points back to the engine's
	// pool.
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encoding the result: %w", err)
	}
	d := &queryData{ResultType: v.Type(), Result: b}
	d.warnings, d.infos = res.Warnings.AsStrings(qs, 10, 10)
	return d, nil
}

// labelRange returns the start and end of a labels or series request.
func (h *Handler) labelRange(r *http.Request) (start, end time.Time, err error) {
	if end, err = timeParam(r, "end", h.opts.Now()); err != nil {
		return
	}
	start, err = timeParam(r, "start", end.Add(-h.opts.LabelRange))
	if err == nil && end.Before(start) {
		err = badData(errors.New("end timestamp must not be before start time"))
	}
	return
}

// selection is the querier and the enforced match[] sets of a labels or
// series request.
func (h *Handler) selection(r *http.Request, a *access, required bool) (storage.Querier, [][]*labels.Matcher, *storage.LabelHints, error) {
	limit, err := limitParam(r)
	if err != nil {
		return nil, nil, nil, err
	}
	start, end, err := h.labelRange(r)
	if err != nil {
		return nil, nil, nil, err
	}
	sets, err := h.matchParam(r, required)
	if err != nil {
		return nil, nil, nil, err
	}
	if sets, err = a.enforce(sets); err != nil {
		return nil, nil, nil, badData(err)
	}
	q, err := h.storageFor(a).Querier(start.UnixMilli(), end.UnixMilli())
	if err != nil {
		return nil, nil, nil, err
	}
	return q, sets, &storage.LabelHints{Limit: limit}, nil
}

// matchParam parses the match[] parameters: each must have a matcher that
// does not match the empty string, as in Prometheus.
func (h *Handler) matchParam(r *http.Request, required bool) ([][]*labels.Matcher, error) {
	ms := r.Form["match[]"]
	if len(ms) == 0 {
		if required {
			return nil, badData(errors.New("no match[] parameter provided"))
		}
		return [][]*labels.Matcher{nil}, nil
	}
	sets, err := h.parser.ParseMetricSelectors(ms)
	if err != nil {
		return nil, badData(fmt.Errorf("invalid parameter \"match[]\": %w", err))
	}
	for _, set := range sets {
		empty := true
		for _, m := range set {
			if !m.Matches("") {
				empty = false
			}
		}
		if empty {
			return nil, badData(errors.New("match[] must contain at least one non-empty matcher"))
		}
	}
	return sets, nil
}

func (h *Handler) labelNames(r *http.Request, a *access) (any, error) {
	return h.labelStrings(r, a, func(q storage.Querier, hints *storage.LabelHints, ms []*labels.Matcher) ([]string, error) {
		names, _, err := q.LabelNames(r.Context(), hints, ms...)
		return names, err
	})
}

func (h *Handler) labelValues(r *http.Request, a *access) (any, error) {
	name := r.PathValue("name")
	if name == "" {
		return nil, badData(errors.New("invalid label name: \"\""))
	}
	return h.labelStrings(r, a, func(q storage.Querier, hints *storage.LabelHints, ms []*labels.Matcher) ([]string, error) {
		vals, _, err := q.LabelValues(r.Context(), name, hints, ms...)
		return vals, err
	})
}

// labelStrings answers a labels or label values request: the sorted union
// of get over the match[] sets.
func (h *Handler) labelStrings(r *http.Request, a *access, get func(storage.Querier, *storage.LabelHints, []*labels.Matcher) ([]string, error)) (any, error) {
	q, sets, hints, err := h.selection(r, a, false)
	if err != nil {
		return nil, err
	}
	defer q.Close()
	set := make(map[string]struct{})
	for _, ms := range sets {
		vs, err := get(q, hints, ms)
		if err != nil {
			return nil, err
		}
		for _, v := range vs {
			set[v] = struct{}{}
		}
	}
	return sortedLimited(set, hints), nil
}

func (h *Handler) series(r *http.Request, a *access) (any, error) {
	q, sets, hints, err := h.selection(r, a, true)
	if err != nil {
		return nil, err
	}
	defer q.Close()
	seen := make(map[string]bool)
	out := []labels.Labels{}
	for _, ms := range sets {
		ss := q.Select(r.Context(), false, nil, ms...)
		for ss.Next() {
			ls := ss.At().Labels()
			if k := ls.String(); !seen[k] {
				seen[k] = true
				out = append(out, ls)
			}
		}
		if err := ss.Err(); err != nil {
			return nil, err
		}
	}
	labelsSort(out)
	if hints.Limit > 0 && len(out) > hints.Limit {
		out = out[:hints.Limit]
	}
	return out, nil
}

// metadataEntry is the metadata of one series name.
type metadataEntry struct {
	Type string `json:"type"`
	Help string `json:"help"`
	Unit string `json:"unit"`
}

// fieldHelp describes the series of each field.
var fieldHelp = [len(Fields)]string{
	"number of points in each cell (one sample per cell, at its start)",
	"sum of the points in each cell (one sample per cell, at its start)",
	"smallest point in each cell (one sample per cell, at its start)",
	"largest point in each cell (one sample per cell, at its start)",
}

// metadata answers the series of the metrics Options.Metrics lists, each a
// gauge of per-cell aggregates (never a counter).
func (h *Handler) metadata(r *http.Request, _ *access) (any, error) {
	limit, err := limitParam(r)
	if err != nil {
		return nil, err
	}
	out := map[string][]metadataEntry{}
	if h.opts.Metrics == nil {
		return out, nil
	}
	metrics, err := h.opts.Metrics(r.Context())
	if err != nil {
		return nil, err
	}
	want := r.FormValue("metric")
	for _, m := range metrics {
		for f := range Fields {
			name := SeriesName(m, Fields[f])
			if (want != "" && name != want) || (limit > 0 && len(out) >= limit) {
				continue
			}
			out[name] = []metadataEntry{{Type: "gauge", Help: m + ": " + fieldHelp[f]}}
		}
	}
	return out, nil
}

func (h *Handler) exemplars(*http.Request, *access) (any, error) { return []struct{}{}, nil }

func (h *Handler) buildInfo(*http.Request, *access) (any, error) { return buildInfo, nil }
