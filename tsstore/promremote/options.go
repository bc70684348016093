package promremote

import (
	"net/http"
	"time"

	"github.com/hourglass-io/hourglass/tsstore"
)

// Defaults of Options.
const (
	// DefaultCellWidth is the width of cells, tsstore.DefaultCellWidth.
	DefaultCellWidth = tsstore.DefaultCellWidth
	// DefaultBatchSize is the most cells (four samples each) sent in one
	// remote-write request.
	DefaultBatchSize = 2500
	// DefaultMaxRetries is how often a request is retried after a
	// connection error, a 429 or a 5xx answer.
	DefaultMaxRetries = 5
	// DefaultRetryInterval is the delay before the first retry; it doubles
	// with each further retry (with jitter) up to DefaultMaxRetryInterval.
	// A Retry-After header from the server takes precedence.
	DefaultRetryInterval = 200 * time.Millisecond
	// DefaultMaxRetryInterval caps the backoff between retries.
	DefaultMaxRetryInterval = 10 * time.Second
	// DefaultRequestTimeout bounds each HTTP request.
	DefaultRequestTimeout = 30 * time.Second
	// DefaultMaxReadSpan is the longest time range one read request
	// covers; longer reads are split. VictoriaMetrics refuses exports
	// longer than its -search.maxExportDuration (30 days by default): Open
	// lowers the span to that flag's value when it can read it.
	DefaultMaxReadSpan = 100 * 365 * 24 * time.Hour
	// DefaultLateWindow is how far behind the engine's newest sample a
	// cell may still be written: the write-back engine's DefaultMaxLate
	// (6 days) plus a day. Open checks the engine settings it can read
	// against it (see the package comment).
	DefaultLateWindow = 7 * 24 * time.Hour
	// DefaultMaxTrackedSeries is how many series a Store remembers the
	// newest written time of, to skip the conflict check of later cells.
	DefaultMaxTrackedSeries = 200_000
)

// ReadAPI selects how a Store reads samples back.
type ReadAPI int

const (
	// ReadAuto probes the read URL at Open: ReadExport when the engine
	// answers /api/v1/export, ReadQuery otherwise. The default.
	ReadAuto ReadAPI = iota
	// ReadExport reads raw samples from /api/v1/export (JSON lines):
	// VictoriaMetrics, single node and vmselect.
	ReadExport
	// ReadQuery reads raw samples with an instant query of a range
	// selector on /api/v1/query: Prometheus, Mimir, Thanos, Cortex.
	ReadQuery
)

// String returns "auto", "export" or "query".
func (r ReadAPI) String() string {
	switch r {
	case ReadExport:
		return "export"
	case ReadQuery:
		return "query"
	}
	return "auto"
}

// Options configures a Store. A nil *Options means the defaults; every zero
// field means its default.
type Options struct {
	// CellWidth is the width of cells; 0 means DefaultCellWidth. It must
	// be a whole number of milliseconds.
	CellWidth time.Duration
	// Username and Password, when Username is not empty, authenticate
	// every request with HTTP basic auth.
	Username, Password string
	// BearerToken, when not empty, authenticates every request with
	// "Authorization: Bearer <token>" (instead of basic auth).
	BearerToken string
	// Headers are added to every request, such as X-Scope-OrgID for Mimir,
	// Cortex and Thanos Receive tenants. Nil means none.
	Headers map[string]string
	// ExternalLabels are added to every series written and required on
	// every read, and never show in results: several deployments (or
	// store versions) can share one engine. A cell with a label of the
	// same name fails with tsstore.ErrInvalid. Nil means none.
	ExternalLabels tsstore.Labels
	// ReadAPI selects the read endpoint; the zero value probes at Open.
	ReadAPI ReadAPI
	// FlushURLs are requested (GET) after every Write, before it returns,
	// to make the written samples searchable at once: VictoriaMetrics'
	// /internal/force_flush of the single node or of every vmstorage
	// node. Nil means: the write URL's /internal/force_flush when Open
	// finds it answering (a VictoriaMetrics single node), else none.
	FlushURLs []string
	// SettleDelay is waited after every Write, for engines that show new
	// samples only after a while and offer no flush URL. 0 means none.
	SettleDelay time.Duration
	// BatchSize is the most cells per remote-write request; 0 means
	// DefaultBatchSize.
	BatchSize int
	// MaxRetries is how often a failed request is retried on connection
	// errors, 429 and 5xx; 0 means DefaultMaxRetries, negative means
	// never.
	MaxRetries int
	// RetryInterval is the first backoff delay; 0 means
	// DefaultRetryInterval.
	RetryInterval time.Duration
	// MaxRetryInterval caps the backoff delay (a Retry-After header is
	// honoured even when longer); 0 means DefaultMaxRetryInterval.
	MaxRetryInterval time.Duration
	// RequestTimeout bounds each HTTP request; 0 means
	// DefaultRequestTimeout.
	RequestTimeout time.Duration
	// MaxReadSpan is the longest time range of one read request; 0 means
	// DefaultMaxReadSpan (lowered at Open to what the engine allows).
	MaxReadSpan time.Duration
	// LateWindow is how far behind the newest sample cells are written;
	// Open fails with tsstore.ErrInvalid when a setting it can read is
	// too short for it (VictoriaMetrics' -retentionPeriod, Prometheus'
	// out_of_order_time_window). 0 means DefaultLateWindow; negative
	// skips the checks.
	LateWindow time.Duration
	// RelativeTolerance is how far apart two values may be and still be
	// the same for the conflict check, relative to the larger: the
	// precision the engine keeps. 0 means the engine's: 1e-12 when
	// reading through the export API (VictoriaMetrics keeps about 12
	// significant digits), exact otherwise. Negative means exact.
	RelativeTolerance float64
	// MaxTrackedSeries bounds how many series the conflict check
	// remembers the newest written time of (cells after it are written
	// without reading back). 0 means DefaultMaxTrackedSeries; negative
	// means none: every cell is checked by reading.
	MaxTrackedSeries int
	// HTTPClient sends every request; nil means a client of the store's
	// own, whose idle connections Close closes.
	HTTPClient *http.Client
}
