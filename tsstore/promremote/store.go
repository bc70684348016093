package promremote

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/hourglass-io/hourglass/internal/gate"
	"github.com/hourglass-io/hourglass/internal/httpretry"
	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/tsstore/internal/bounds"
)

// Store is a tsstore.Store on a Prometheus remote-write engine. Create one
// with Open. It is safe for concurrent use.
type Store struct {
	writeURL   string
	readPrefix *url.URL
	opts       Options // with defaults filled in
	width      time.Duration
	widthMs    int64
	readAPI    ReadAPI // ReadExport or ReadQuery
	flushURLs  []string
	readSpan   int64   // ms
	tolerance  float64 // relative; 0 means exact
	retry      httpretry.Policy
	http       *http.Client
	ownHTTP    bool
	extKeys    map[string]bool // names of ExternalLabels
	// retention and future, when positive, bound the sample times the
	// engine keeps around the present (VictoriaMetrics' -retentionPeriod
	// and -futureRetention): it drops rows outside behind a 2xx.
	retention, future time.Duration

	// bounds keeps an upper bound of the stored sample times of series
	// (metric, labels, writer; see conflict.go); its stripes serialize the
	// conflict check and write of a series within this Store.
	bounds bounds.Table[string]

	calls gate.Gate // operations in progress; closed by Close
}

var _ tsstore.Store = (*Store)(nil)

// Open returns a Store that writes to writeURL (the remote-write endpoint,
// such as "http://vm:8428/api/v1/write") and reads below readURL (the
// prefix of the Prometheus HTTP API, such as "http://vm:8428/" or
// "http://vmselect:8481/select/0/prometheus/"). It reads the engine's
// settings it can (see the package comment): it fails with
// tsstore.ErrInvalid when one of them breaks the Store's contract, and
// with tsstore.ErrUnavailable when the read URL does not answer. A nil
// opts means the defaults.
func Open(ctx context.Context, writeURL, readURL string, opts *Options) (*Store, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if _, err := httpURL(writeURL); err != nil {
		return nil, tsstore.Errorf(tsstore.ErrInvalid, "promremote: open: write URL: %w", err)
	}
	rp, err := httpURL(readURL)
	if err != nil {
		return nil, tsstore.Errorf(tsstore.ErrInvalid, "promremote: open: read URL: %w", err)
	}
	if o.CellWidth == 0 {
		o.CellWidth = DefaultCellWidth
	}
	if o.CellWidth < time.Millisecond || o.CellWidth%time.Millisecond != 0 {
		return nil, tsstore.Errorf(tsstore.ErrInvalid, "promremote: open: cell width %v is not a positive whole number of milliseconds", o.CellWidth)
	}
	if err := o.ExternalLabels.Validate(); err != nil {
		return nil, fmt.Errorf("promremote: open: external labels: %w", err)
	}
	if o.ReadAPI < ReadAuto || o.ReadAPI > ReadQuery {
		return nil, tsstore.Errorf(tsstore.ErrInvalid, "promremote: open: unknown read API %d", int(o.ReadAPI))
	}
	for _, f := range o.FlushURLs {
		if _, err := httpURL(f); err != nil {
			return nil, tsstore.Errorf(tsstore.ErrInvalid, "promremote: open: flush URL: %w", err)
		}
	}
	if o.BatchSize <= 0 {
		o.BatchSize = DefaultBatchSize
	}
	o.RetryInterval = orDefault(o.RetryInterval, DefaultRetryInterval)
	o.MaxRetryInterval = orDefault(o.MaxRetryInterval, DefaultMaxRetryInterval)
	o.RequestTimeout = orDefault(o.RequestTimeout, DefaultRequestTimeout)
	o.MaxReadSpan = orDefault(o.MaxReadSpan, DefaultMaxReadSpan)
	if o.LateWindow == 0 {
		o.LateWindow = DefaultLateWindow
	}
	s := &Store{
		writeURL:   writeURL,
		readPrefix: rp,
		opts:       o,
		width:      o.CellWidth,
		widthMs:    o.CellWidth.Milliseconds(),
		readAPI:    o.ReadAPI,
		flushURLs:  o.FlushURLs,
		readSpan:   o.MaxReadSpan.Milliseconds(),
		retry: httpretry.Policy{
			MaxRetries:  o.MaxRetries,
			Interval:    o.RetryInterval,
			MaxInterval: o.MaxRetryInterval,
		},
		http:    o.HTTPClient,
		extKeys: make(map[string]bool, len(o.ExternalLabels)),
	}
	for _, l := range o.ExternalLabels {
		s.extKeys[l.Name] = true
	}
	switch {
	case s.retry.MaxRetries == 0:
		s.retry.MaxRetries = DefaultMaxRetries
	case s.retry.MaxRetries < 0:
		s.retry.MaxRetries = 0
	}
	tracked := o.MaxTrackedSeries
	if tracked == 0 {
		tracked = DefaultMaxTrackedSeries
	}
	s.bounds.SetLimit(tracked) // negative: none
	if s.http == nil {
		s.http = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
		s.ownHTTP = true
	}
	if err := s.probe(ctx); err != nil {
		s.closeIdle()
		return nil, err
	}
	switch {
	case o.RelativeTolerance > 0:
		s.tolerance = o.RelativeTolerance
	case o.RelativeTolerance == 0 && s.readAPI == ReadExport:
		s.tolerance = victoriaTolerance
	}
	return s, nil
}

// victoriaTolerance is the relative precision of values read back from
// VictoriaMetrics, which stores a float as a decimal mantissa and exponent
// (about 12 significant digits survive a round trip).
const victoriaTolerance = 1e-12

func httpURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, err
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%q is not an http(s)://host[:port]/... URL", raw)
	}
	return u, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// CellWidth returns the width of the store's cells.
func (s *Store) CellWidth() time.Duration { return s.width }

// ReadAPI returns the read API in use (ReadExport or ReadQuery).
func (s *Store) ReadAPI() ReadAPI { return s.readAPI }

// FlushURLs returns the URLs requested after every Write (see
// Options.FlushURLs).
func (s *Store) FlushURLs() []string { return append([]string(nil), s.flushURLs...) }

// begin starts an operation: it fails with ErrClosed once Close has
// begun, and otherwise counts the operation until end, so that Close waits
// for it.
func (s *Store) begin(op string) error {
	if !s.calls.Enter() {
		return tsstore.Errorf(tsstore.ErrClosed, "promremote: %s", op)
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
	s.closeIdle()
	return nil
}

func (s *Store) closeIdle() {
	if s.ownHTTP {
		s.http.CloseIdleConnections()
	}
}
