package influx

import (
	"net/http"
	"time"

	"github.com/hourglass-io/hourglass/tsstore"
)

// Defaults of Options.
const (
	// DefaultDatabase is the database (InfluxDB 1.x) written and queried
	// when Options.Database is empty.
	DefaultDatabase = "hourglass"
	// DefaultBatchSize is the most points sent in one write request.
	DefaultBatchSize = 5000
	// DefaultMaxRetries is how often a write request is retried after a
	// connection error, a 429 or a 5xx answer.
	DefaultMaxRetries = 5
	// DefaultRetryInterval is the delay before the first retry; it doubles
	// with each further retry (with jitter) up to DefaultMaxRetryInterval.
	// A Retry-After header from the server takes precedence.
	DefaultRetryInterval = 200 * time.Millisecond
	// DefaultMaxRetryInterval caps the exponential backoff between retries.
	DefaultMaxRetryInterval = 10 * time.Second
	// DefaultRequestTimeout bounds each HTTP request to the server.
	DefaultRequestTimeout = 30 * time.Second
	// DefaultMaxTrackedSeries is how many series a Store remembers the
	// newest written time of, to skip the conflict check of later cells
	// (see Options.MaxTrackedSeries).
	DefaultMaxTrackedSeries = 200_000
	// DefaultCellWidth is the width of cells, tsstore.DefaultCellWidth.
	DefaultCellWidth = tsstore.DefaultCellWidth
)

// WriteAPI selects the HTTP endpoint that writes go to.
type WriteAPI int

const (
	// WriteV2 writes through influxdb-client-go's blocking write API to
	// /api/v2/write: InfluxDB 2.x, Cloud, 3.x, and 1.8+ (where the bucket
	// is "database/retention-policy"). The default.
	WriteV2 WriteAPI = iota
	// WriteV1 writes to the 1.x /write endpoint with net/http, for
	// servers older than 1.8.
	WriteV1
)

// String returns "v2" or "v1".
func (w WriteAPI) String() string {
	if w == WriteV1 {
		return "v1"
	}
	return "v2"
}

// QueryLanguage selects how the store reads.
type QueryLanguage int

const (
	// InfluxQL queries the /query endpoint (1.x, 2.x through its v1
	// compatibility API, 3.x). The default.
	InfluxQL QueryLanguage = iota
	// Flux queries /api/v2/query through influxdb-client-go's QueryAPI
	// (2.x, Cloud, 1.7+ with flux-enabled).
	Flux
)

// String returns "InfluxQL" or "Flux".
func (l QueryLanguage) String() string {
	if l == Flux {
		return "Flux"
	}
	return "InfluxQL"
}

// Options configures a Store. A nil *Options means the defaults; every zero
// field means its default.
type Options struct {
	// Database is the 1.x database (also the database of InfluxQL
	// queries on 2.x through a DBRP mapping). Empty means DefaultDatabase.
	Database string
	// RetentionPolicy is the 1.x retention policy; empty means the
	// database's default.
	RetentionPolicy string
	// Bucket is the bucket of v2 writes and Flux queries. Empty means
	// "Database/RetentionPolicy", or "Database" without a retention
	// policy: the 1.8+ compatibility mapping.
	Bucket string
	// Org is the organization of v2 writes and Flux queries (2.x); empty
	// for 1.x.
	Org string
	// Token authenticates as "Authorization: Token <Token>" (2.x, and
	// "username:password" on 1.8+). Empty means none.
	Token string
	// Username and Password authenticate with HTTP basic auth on 1.x
	// when Token is empty (and form the token "Username:Password" for v2
	// writes). Empty means none.
	Username, Password string
	// WriteAPI selects the write endpoint; the zero value is WriteV2.
	WriteAPI WriteAPI
	// QueryLanguage selects InfluxQL (the zero value) or Flux.
	QueryLanguage QueryLanguage
	// BatchSize is the most points per write request; 0 means
	// DefaultBatchSize.
	BatchSize int
	// DisableGzip sends write requests uncompressed; by default they are
	// gzip-compressed.
	DisableGzip bool
	// MaxRetries is how often a failed write request is retried on
	// connection errors, 429 and 5xx; 0 means DefaultMaxRetries, negative
	// means never.
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
	// CellWidth is the width of cells; 0 means DefaultCellWidth. It must
	// be a whole number of milliseconds.
	CellWidth time.Duration
	// HTTPClient sends every request; nil means a client of the store's
	// own, whose idle connections Close closes.
	HTTPClient *http.Client
	// SkipConflictCheck trades safety for write speed: Write no longer
	// reads the stored points of a batch before writing it, so a cell
	// written again with a different aggregate silently overwrites the
	// stored one instead of failing with tsstore.ErrConflict. Identical
	// rewrites stay harmless. Use it only when each cell identity has
	// exactly one writer that never rewrites with other values.
	SkipConflictCheck bool
	// MaxTrackedSeries bounds how many series the conflict check
	// remembers an upper bound of the stored times of (each costs about
	// 100 bytes plus its series key; the limit is spread over 64 stripes
	// by series hash, so a stripe may evict before the total is reached).
	// Cells after their series' bound are written without reading; a
	// series beyond the limit evicts an arbitrary one, whose next write is
	// checked by reading again. 0 means DefaultMaxTrackedSeries; negative
	// means none: every cell is checked by reading.
	MaxTrackedSeries int
}
