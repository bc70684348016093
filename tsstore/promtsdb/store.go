package promtsdb

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/tsdb"

	"github.com/hourglass-io/hourglass/tsstore"
)

// Defaults of Options.
const (
	// DefaultOutOfOrderWindow is how far behind the newest stored sample a
	// cell may still be written: late data and retried flushes must land,
	// and cells arrive up to an hour and more after their time.
	DefaultOutOfOrderWindow = 7 * 24 * time.Hour
	// DefaultMaxBlockDuration is the largest time range compaction merges
	// into one block (as Prometheus does for long retention).
	DefaultMaxBlockDuration = 31 * 24 * time.Hour
)

// ErrTooOld is wrapped, together with tsstore.ErrInvalid, by the error of a
// write whose cell is older than the newest stored sample minus the
// out-of-order window.
var ErrTooOld = errors.New("older than the out-of-order window")

// Options configures a Store. A nil *Options means the defaults; every zero
// field means its default.
type Options struct {
	// CellWidth is the width of cells; 0 means tsstore.DefaultCellWidth.
	// A directory must always be opened with the same width.
	CellWidth time.Duration
	// OutOfOrderWindow is how far behind the newest stored sample a cell
	// may be written; 0 means DefaultOutOfOrderWindow.
	OutOfOrderWindow time.Duration
	// Retention, when positive, lets the TSDB delete blocks older than
	// this behind the newest data. 0 means never delete (the default: the
	// mission keeps all data).
	Retention time.Duration
	// MaxBlockDuration bounds the time range of a compacted block; 0 means
	// DefaultMaxBlockDuration.
	MaxBlockDuration time.Duration
	// Logger receives the TSDB's logs; nil discards them.
	Logger *slog.Logger
	// Registerer, when set, registers the TSDB's metrics.
	Registerer prometheus.Registerer
}

// Store is a tsstore.Store on an embedded Prometheus TSDB. Create one with
// Open. It is safe for concurrent use.
type Store struct {
	db      *tsdb.DB
	dir     string
	width   time.Duration
	widthMs int64

	stripes  [numStripes]stripe
	batchSeq atomic.Uint64 // numbers Write calls for the per-batch fields of seriesState

	// appendMu serializes the appends and commits of Writes. tsdb v0.316.0
	// sorts a label's postings list in place when two appenders create
	// series concurrently and their ids arrive out of order, while a query
	// may be reading that list: a data race that can make the query miss
	// series (prometheus/prometheus#15317, open; the race detector caught
	// it in storetest's concurrency test). With one appender at a time ids
	// are added in order, appended past what readers hold. A flush writes
	// from one goroutine anyway; only concurrent Writes wait.
	appendMu sync.Mutex

	scratchPool sync.Pool // of *writeScratch
	redo        *redoLog
	oooCommit   int         // oooCommitSamples but in tests
	external    atomic.Bool // As has given the DB out: the Seq bound (seriesState.unstored) no longer holds

	closeMu sync.RWMutex // guards closed; held for reading by every operation
	closed  bool
}

var _ tsstore.Store = (*Store)(nil)

// Open opens (creating it if needed) the TSDB in dir and replays its
// write-ahead log. The directory is locked against other processes until
// Close.
func Open(dir string, opts *Options) (*Store, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.CellWidth == 0 {
		o.CellWidth = tsstore.DefaultCellWidth
	}
	if o.OutOfOrderWindow == 0 {
		o.OutOfOrderWindow = DefaultOutOfOrderWindow
	}
	if o.MaxBlockDuration == 0 {
		o.MaxBlockDuration = DefaultMaxBlockDuration
	}
	switch {
	case o.CellWidth < time.Millisecond || o.CellWidth%time.Millisecond != 0:
		return nil, tsstore.Errorf(tsstore.ErrInvalid, "promtsdb: open %s: cell width %v is not a positive whole number of milliseconds", dir, o.CellWidth)
	case o.OutOfOrderWindow < 0:
		return nil, tsstore.Errorf(tsstore.ErrInvalid, "promtsdb: open %s: negative out-of-order window %v", dir, o.OutOfOrderWindow)
	case o.Retention < 0:
		return nil, tsstore.Errorf(tsstore.ErrInvalid, "promtsdb: open %s: negative retention %v", dir, o.Retention)
	}
	to := tsdb.DefaultOptions()
	to.RetentionDuration = o.Retention.Milliseconds() // 0 disables time retention
	to.OutOfOrderTimeWindow = o.OutOfOrderWindow.Milliseconds()
	to.MaxBlockDuration = o.MaxBlockDuration.Milliseconds()
	db, err := tsdb.Open(dir, o.Logger, o.Registerer, to, nil)
	if err != nil {
		return nil, tsstore.Errorf(tsstore.ErrUnavailable, "promtsdb: open %s: %w", dir, err)
	}
	s := &Store{db: db, dir: dir, width: o.CellWidth, widthMs: o.CellWidth.Milliseconds(), oooCommit: oooCommitSamples}
	for i := range s.stripes {
		s.stripes[i].series = make(map[uint64]*seriesState)
	}
	if s.redo, err = openRedo(dir); err == nil {
		err = s.replayRedo()
	}
	if err != nil {
		_ = db.Close()
		return nil, tsstore.Errorf(tsstore.ErrUnavailable, "promtsdb: open %s: redo log: %w", dir, err)
	}
	return s, nil
}

// CellWidth returns the width of the store's cells.
func (s *Store) CellWidth() time.Duration { return s.width }

// As gives access to the underlying database, in the manner of
// gocloud.dev's As: when target is a **tsdb.DB it sets *target and
// returns true. Reads and compactions through it are safe; appends bypass
// the Store's conflict checks (and once it has been called, every late
// cell of a Write is read back). The DB must not be closed directly.
func (s *Store) As(target any) bool {
	p, ok := target.(**tsdb.DB)
	if ok {
		*p = s.db
		// Samples appended through it are in no series' Seq bound: from
		// now on every late cell is read back.
		s.external.Store(true)
	}
	return ok
}

// Close closes the TSDB, waiting for in-flight operations and compactions,
// and releases the directory lock. Calling it again returns nil.
func (s *Store) Close() error {
	s.closeMu.Lock()
	defer s.closeMu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	err := s.closeDB()
	if rerr := s.redo.close(); err == nil {
		err = rerr
	}
	if err != nil {
		return tsstore.Errorf(tsstore.ErrUnavailable, "promtsdb: close: %w", err)
	}
	return nil
}

// closeDB closes the TSDB. tsdb panics when it cannot write a head chunk
// to its directory (handleChunkWriteError), and its Close writes the
// head's full chunks: with the directory deleted under a running Store (a
// lost disk), Close would crash the process. closeDB recreates the chunk
// directory first, so that Close completes (and stops tsdb's goroutines),
// and reports the loss; a panic all the same becomes an error. (tsdb's
// background loop writes such chunks too, about once a minute, and nothing
// outside tsdb can catch a panic there.)
func (s *Store) closeDB() (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("tsdb panicked (is its directory gone?): %v", r)
		}
	}()
	var lost error
	if _, serr := os.Stat(s.dir); errors.Is(serr, fs.ErrNotExist) {
		lost = fmt.Errorf("its directory %s was removed while it was open", s.dir)
		if merr := os.MkdirAll(filepath.Join(s.dir, "chunks_head"), 0o777); merr != nil {
			lost = errors.Join(lost, merr)
		}
	}
	return errors.Join(lost, s.db.Close())
}

// enter takes the read side of closeMu, failing with ErrClosed after Close;
// the caller must call s.closeMu.RUnlock.
func (s *Store) enter(op string) error {
	s.closeMu.RLock()
	if s.closed {
		s.closeMu.RUnlock()
		return tsstore.Errorf(tsstore.ErrClosed, "promtsdb: %s", op)
	}
	return nil
}

func seriesName(metric string, comp int) string {
	return metric + componentSuffix[comp]
}

// The four components of a cell, in the order of their series.
const (
	compCount = iota
	compSum
	compMin
	compMax
	numComps
)

var componentSuffix = [numComps]string{":count", ":sum", ":min", ":max"}

func (c comps) String() string {
	return fmt.Sprintf("{count %v, sum %v, min %v, max %v}", c.v[compCount], c.v[compSum], c.v[compMin], c.v[compMax])
}

// nameLabel is the TSDB's label for the series name.
const nameLabel = tsstore.ReservedLabel

// writerLabel is the TSDB label of a cell's writer, absent for the legacy
// writer "".
const writerLabel = tsstore.WriterLabel
