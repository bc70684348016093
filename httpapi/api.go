package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/writeback"
)

// Defaults of Options.
const (
	// DefaultMaxBody is the largest request body in bytes, after gzip
	// decoding; larger ones get 413.
	DefaultMaxBody = 4 << 20
	// DefaultRate is the requests per second a merchant may send (a token
	// bucket per merchant).
	DefaultRate = 50
	// DefaultBurst is the size of a merchant's token bucket.
	DefaultBurst = 100
)

// Engine is what the handlers need of a write-back engine:
// *writeback.Engine, or anything that writes and answers queries the same
// way. Its methods must be safe for concurrent use.
type Engine interface {
	// Write validates and keeps points, all or none, before it returns.
	// It must not keep the slice points once it returns (it may keep the
	// points' metric names and label sets): the handlers reuse its memory
	// for the next request.
	Write(ctx context.Context, points []tsstore.Point) error
	// Query answers q exactly.
	Query(ctx context.Context, q tsstore.Query) (*tsstore.Result, error)
	// CellWidth is the width of a cell: the finest query step.
	CellWidth() time.Duration
}

// Admitter is an Engine that bounds the writes running at once
// (writeback.Engine.Admit: while it flushes): the ingest handlers call
// Admit after reading a request's body (and gunzipping it) and release
// after its Write, so that the bound covers parsing the body too.
type Admitter interface {
	Admit(ctx context.Context) (release func(), err error)
}

var (
	_ Engine   = (*writeback.Engine)(nil)
	_ Admitter = (*writeback.Engine)(nil)
)

// Tokens resolves a request's token. Its methods must be safe for
// concurrent use and should compare secrets in constant time.
// *TokenFile is the implementation of this package.
type Tokens interface {
	// Merchant returns the merchant token is bound to, or ok false when
	// token is not a valid merchant token.
	Merchant(token string) (merchant string, ok bool)
	// IsAdmin reports whether token is an admin token.
	IsAdmin(token string) bool
}

// EventDecoder turns one event of POST /v1/events (one element of the JSON
// array, or one NDJSON line) of merchant into raw points, appended to dst.
// now is the request's time, for events without one. An error names the
// field; the handler prefixes it with the event's index or line and
// answers 400. Points of merchant must carry the label merchant=<merchant>:
// that is what keeps merchants apart. DecodeJSON decodes an event strictly
// and CheckTime checks a timestamp against the engine's default window.
// It must be safe for concurrent use. It must keep neither event nor dst,
// and the points must not refer to event's memory (a string made with
// unsafe.String over it, say): the handlers reuse the memory of both for
// the next request.
type EventDecoder func(dst []tsstore.Point, event []byte, merchant string, now time.Time) ([]tsstore.Point, error)

// Options configure an API. A nil *Options means all defaults.
type Options struct {
	// MaxBody is the largest request body in bytes, before and after gzip
	// decoding; larger ones get 413. Zero means DefaultMaxBody.
	MaxBody int64
	// Rate is the requests per second allowed per merchant, a token bucket
	// per merchant; over it a request gets 429 with Retry-After. Zero means
	// DefaultRate; a negative rate means no limit.
	Rate float64
	// Burst is the size of a merchant's token bucket. Zero means
	// DefaultBurst.
	Burst int
	// DecodeEvent decodes the events of POST /v1/events. Nil means the
	// route is not served.
	DecodeEvent EventDecoder
	// Metrics counts the requests, ingested points, refusals and store
	// errors. Nil means none are counted.
	Metrics *Metrics
	// Logger logs engine errors answered with 500. Nil means slog.Default().
	Logger *slog.Logger
	// Now is the clock of the handlers (a line without a timestamp gets
	// it; query ranges are relative to it). Nil means time.Now.
	Now func() time.Time
}

// API serves the ingest and query endpoints of an analytics server over
// one engine, for the merchants its tokens name:
//
//	POST /v1/events           a JSON array or NDJSON of events (Options.DecodeEvent)
//	POST /write               InfluxDB 1.x line protocol
//	POST /api/v2/write        InfluxDB 2.x line protocol
//	GET  /v1/metrics/{metric} a merchant's series of a metric
//
// Safe for concurrent use.
type API struct {
	eng Engine
	// admitter is eng as an Admitter, nil when it is not one.
	admitter Admitter
	tokens   Tokens
	limits   *rateLimits
	maxBody  int64
	decode   EventDecoder
	metrics  *Metrics
	log      *slog.Logger
	now      func() time.Time
	mux      *http.ServeMux
}

var _ http.Handler = (*API)(nil)

// New returns the API over eng, authenticating requests with tokens.
func New(eng Engine, tokens Tokens, opts *Options) (*API, error) {
	if eng == nil || tokens == nil {
		return nil, tsstore.Errorf(tsstore.ErrInvalid, "httpapi: New needs an engine and tokens")
	}
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.MaxBody < 0 || o.Burst < 0 {
		return nil, tsstore.Errorf(tsstore.ErrInvalid, "httpapi: MaxBody %d and Burst %d must not be negative", o.MaxBody, o.Burst)
	}
	if o.MaxBody == 0 {
		o.MaxBody = DefaultMaxBody
	}
	if o.Rate == 0 {
		o.Rate = DefaultRate
	}
	if o.Burst == 0 {
		o.Burst = DefaultBurst
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	a := &API{
		eng: eng, tokens: tokens, limits: newRateLimits(max(o.Rate, 0), o.Burst), maxBody: o.MaxBody,
		decode: o.DecodeEvent, metrics: o.Metrics, log: o.Logger, now: o.Now, mux: http.NewServeMux(),
	}
	a.admitter, _ = eng.(Admitter)
	a.Register(a.mux)
	return a, nil
}

// Register mounts the API's routes on mux (patterns with methods, Go 1.22
// and later).
func (a *API) Register(mux *http.ServeMux) {
	handle := func(pattern, route string, h http.HandlerFunc) {
		mux.Handle(pattern, a.metrics.Instrument(route, h))
	}
	if a.decode != nil {
		handle("POST /v1/events", "/v1/events", a.merchant("events", a.postEvents))
	}
	handle("POST /write", "/write", a.merchant("write_v1", a.postLineProtocol("write_v1")))
	handle("POST /api/v2/write", "/api/v2/write", a.merchant("write_v2", a.postLineProtocol("write_v2")))
	handle("GET /v1/metrics/{metric}", "/v1/metrics", a.merchant("", a.getMetric))
}

// ServeHTTP serves the API's routes; any other path gets 404.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.mux.ServeHTTP(w, r) }

// WriteEngineError answers err, an error of the engine or of a backend,
// as WriteError does; op names the operation ("write", "query", "flush")
// in the store-error metric (ErrUnavailable) and in the log line of a 500.
func (a *API) WriteEngineError(w http.ResponseWriter, op string, err error) {
	if classify(err) == kindUnavailable {
		a.metrics.StoreError(op)
	}
	if WriteError(w, err) == http.StatusInternalServerError {
		a.log.Error("request failed", "op", op, "err", err)
	}
}
