package replicate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hourglass-io/hourglass/balancer"
	"github.com/hourglass-io/hourglass/tsstore"
)

// Store is a tsstore.Store over one primary and standbys; see the package
// comment. Create one with New. It is safe for concurrent use.
type Store struct {
	opts  Options
	log   *slog.Logger
	width time.Duration
	links []*link
	bal   *balancer.Balancer[tsstore.Store]

	// order serialises the registration of writes (seq, hint appends) and
	// the switch of the primary.
	order   sync.Mutex
	seq     uint64 // guarded by order
	primary *link  // guarded by order

	epoch     atomic.Uint64
	lastAcked atomic.Uint64
	fenced    atomic.Pointer[error]

	stateMu sync.Mutex // guards state and the state file
	state   state

	closeMu sync.RWMutex // held shared by calls, exclusively by Close
	closed  bool

	promotions atomic.Uint64
	cancel     context.CancelFunc
	wg         sync.WaitGroup
}

var _ tsstore.Store = (*Store)(nil)

// New returns a Store writing to primary and standbys, with its state and
// hints in opts.Dir. When Dir holds the state of an earlier run, its epoch
// and its primary (by name) win over the argument order, and its hints are
// replayed. The replicas must have the same cell width. The Store does not
// own the replicas: Close leaves them open.
func New(primary tsstore.Store, standbys []tsstore.Store, opts *Options) (*Store, error) {
	if opts == nil || opts.Dir == "" {
		return nil, tsstore.Errorf(tsstore.ErrInvalid, "replicate: Options.Dir is required (it keeps the hints)")
	}
	o := *opts
	if err := o.validate(); err != nil {
		return nil, err
	}
	o.withDefaults()
	stores := append([]tsstore.Store{primary}, standbys...)
	if slices.Contains(stores, nil) {
		return nil, tsstore.Errorf(tsstore.ErrInvalid, "replicate: a replica is nil")
	}
	names := o.Names
	if names == nil {
		for i := range stores {
			names = append(names, fmt.Sprintf("r%d", i))
		}
	}
	if len(names) != len(stores) {
		return nil, tsstore.Errorf(tsstore.ErrInvalid, "replicate: %d names for %d replicas", len(names), len(stores))
	}
	for i, n := range names {
		if err := validateName(n); err != nil {
			return nil, err
		}
		if slices.Contains(names[:i], n) {
			return nil, tsstore.Errorf(tsstore.ErrInvalid, "replicate: replica name %q used twice", n)
		}
	}
	width := primary.CellWidth()
	for i, st := range stores {
		if st.CellWidth() != width {
			return nil, tsstore.Errorf(tsstore.ErrInvalid, "replicate: replica %s has cell width %v, the primary %v", names[i], st.CellWidth(), width)
		}
	}
	if need := o.Ack.required(len(standbys)); need > len(standbys) || need < 0 {
		return nil, tsstore.Errorf(tsstore.ErrInvalid, "replicate: ack level %s needs %d standbys, there are %d", o.Ack, need, len(standbys))
	}
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("replicate: %w", err)
	}
	s := &Store{opts: o, log: o.Logger, width: width}
	st, err := loadState(o.Dir)
	if err != nil {
		return nil, fmt.Errorf("replicate: state: %w", err)
	}
	if st == nil {
		st = &state{Epoch: 1, Primary: names[0]}
	}
	if !slices.Contains(names, st.Primary) {
		return nil, tsstore.Errorf(tsstore.ErrInvalid, "replicate: the state in %s names primary %q, not one of the replicas %v", o.Dir, st.Primary, names)
	}
	s.state = *st
	s.epoch.Store(st.Epoch)
	if err := s.saveStateLocked(); err != nil {
		return nil, fmt.Errorf("replicate: state: %w", err)
	}

	wms := width.Milliseconds()
	var maxSeq uint64
	for i, rs := range stores {
		l := &link{s: s, name: names[i], store: rs, wake: make(chan struct{}, 1),
			inflight: make(map[uint64]struct{}), changed: make(chan struct{}), healthy: true}
		l.fencer, _ = rs.(Fencer)
		lg, recs, err := openHintLog(filepath.Join(o.Dir, "hints", l.name), o.HintSegmentBytes, wms)
		if err != nil {
			s.closeLogs()
			return nil, fmt.Errorf("replicate: replica %s: %w", l.name, err)
		}
		l.log = lg
		slices.SortStableFunc(recs, func(a, b *record) int { return cmpUint(a.seq, b.seq) })
		for _, r := range recs {
			l.pendBytes += r.size
			maxSeq = max(maxSeq, r.seq)
		}
		l.pend = recs
		if sr := st.Stale[l.name]; sr != nil {
			c := *sr
			l.stale = &c
			maxSeq = max(maxSeq, c.MaxSeq)
		}
		if l.fencer != nil && l.fencer.Epoch() > s.epoch.Load() {
			s.setFenced(fencedError(l.fencer.Epoch(), s.epoch.Load()))
		}
		s.links = append(s.links, l)
		if l.name == st.Primary {
			s.primary = l
		}
	}
	s.seq = maxSeq
	s.lastAcked.Store(maxSeq)
	for _, l := range s.links {
		l.registered = maxSeq
	}

	s.bal = balancer.New(nil, &balancer.Options[tsstore.Store]{
		Name:           "replicate",
		Probe:          probe,
		CheckInterval:  -1, // the monitor drives the checks
		CheckTimeout:   o.ProbeTimeout,
		Rise:           o.Rise,
		Fall:           o.Fall,
		PanicThreshold: -1, // never read from an unhealthy replica
	})
	for _, l := range s.links {
		if err := s.bal.Add(balancer.Backend[tsstore.Store]{ID: l.name, Value: l.store}); err != nil {
			_ = s.bal.Close()
			s.closeLogs()
			return nil, err
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	for _, l := range s.links {
		s.wg.Add(1)
		go l.run(ctx)
	}
	s.wg.Add(1)
	go s.monitor(ctx)
	return s, nil
}

func validateName(n string) error {
	if n == "" || len(n) > 64 {
		return tsstore.Errorf(tsstore.ErrInvalid, "replicate: replica name %q: want 1 to 64 characters", n)
	}
	for _, c := range []byte(n) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			return tsstore.Errorf(tsstore.ErrInvalid, "replicate: replica name %q: character %q not in [a-zA-Z0-9_.-]", n, c)
		}
	}
	return nil
}

// probeMetric is the metric the health probe reads: a cheap, empty read.
const probeMetric = "hourglass_replicate_probe"

func probe(ctx context.Context, st tsstore.Store) error {
	_, err := st.Cells(ctx, tsstore.Selector{Metric: probeMetric, From: 0, To: 1})
	return err
}

// CellWidth returns the width of the replicas' cells.
func (s *Store) CellWidth() time.Duration { return s.width }

// Write writes cells to every replica and returns once the ack level is
// met; see WriteSeq.
func (s *Store) Write(ctx context.Context, cells []tsstore.Cell) error {
	_, err := s.WriteSeq(ctx, cells)
	return err
}

// WriteSeq writes cells to every replica: to the primary directly, to each
// standby through its hint log (appended before the write is acknowledged,
// so a standby that is down or slow never loses it), and returns once the
// ack level is met, with the write's sequence number: pass it to
// WithMinSeq to read from a replica that has applied this write.
//
// When the ack level is not met the error says which replicas failed and
// wraps their errors; it is of kind tsstore.ErrUnavailable (retry), or
// tsstore.ErrConflict when the primary refused a cell or the Store is
// fenced (ErrFenced), or tsstore.ErrInvalid for bad cells (nothing was
// written).
func (s *Store) WriteSeq(ctx context.Context, cells []tsstore.Cell) (uint64, error) {
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return 0, tsstore.Errorf(tsstore.ErrClosed, "replicate: write")
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if err := tsstore.ValidateCells(cells, s.width); err != nil {
		return 0, fmt.Errorf("replicate: write: %w", err)
	}
	if len(cells) == 0 {
		return s.lastAcked.Load(), nil
	}
	if err := s.fencedErr(); err != nil {
		return 0, err
	}
	// The appliers keep a shallow copy: the cells' labels are shared with
	// the caller, who must not modify them (no tsstore caller does).
	mem := slices.Clone(cells)
	sp := spanOf(cells, s.width.Milliseconds())
	at := time.Now().UnixNano()
	type waiter struct {
		l        *link
		failures uint64
		failing  bool
	}
	waiters := make([]waiter, 0, len(s.links)-1)

	// Register the write with every replica, in seq order: in flight until
	// it is applied (the primary) or in the hint log (a standby).
	s.order.Lock()
	s.seq++
	seq := s.seq
	primary, epoch := s.primary, s.epoch.Load()
	for _, l := range s.links {
		l.mu.Lock()
		l.registered = seq
		l.inflight[seq] = struct{}{}
		if l != primary {
			// Fail fast on a replica that is down (failing, and not
			// answering probes) or stale; one that failed but answers
			// again is waited for: its applier is retrying.
			waiters = append(waiters, waiter{l, l.failures, l.failing && !l.healthy || l.stale != nil})
		}
		l.mu.Unlock()
	}
	s.order.Unlock()

	// Encode the hint record and append it to the standbys' logs, then
	// write to the primary. Both happen on this goroutine: encoding in a
	// goroutine of its own, overlapped with the primary's write, made the
	// writer wait for that goroutine to be scheduled whenever the cores
	// were busy (the standbys' appliers, the stores' compactions), which
	// cost more than the encoding (BenchmarkWrite, overhead-µs/op).
	var buf []byte
	if len(waiters) > 0 {
		buf = newRecordBuf(cells)
		sealRecord(buf, seq, at)
	}
	for _, w := range waiters {
		w.l.mu.Lock()
		delete(w.l.inflight, seq)
		w.l.appendLocked(seq, at, buf, mem, sp)
		w.l.mu.Unlock()
		w.l.kick()
	}

	var errs []error
	perr := primary.direct(ctx, seq, epoch, at, cells, buf, sp)
	if buf != nil {
		putRecordBuf(buf) // appended everywhere (the logs copied it)
	}
	if perr != nil {
		primary.kick()
		errs = append(errs, fmt.Errorf("replica %s (primary): %w", primary.name, perr))
	}
	need := s.opts.Ack.required(len(waiters))
	applied := 0
	if perr == nil && need > 0 {
		wctx, cancel := context.WithTimeout(ctx, s.opts.AckTimeout)
		results := make(chan error, len(waiters))
		for _, w := range waiters {
			go func() {
				err := w.l.waitApplied(wctx, seq, w.failures, w.failing)
				if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
					err = tsstore.Errorf(tsstore.ErrUnavailable, "did not apply write %d within the ack timeout of %v", seq, s.opts.AckTimeout)
				}
				if err != nil {
					err = fmt.Errorf("replica %s: %w", w.l.name, err)
				}
				results <- err
			}()
		}
		failed := 0
		for range waiters {
			err := <-results
			if err == nil {
				applied++
			} else if !errors.Is(err, context.Canceled) || ctx.Err() != nil {
				failed++
				errs = append(errs, err)
			}
			if applied >= need || len(waiters)-failed < need {
				break
			}
		}
		cancel()
	}
	if perr == nil && applied >= need {
		if need > 0 {
			// The standbys that have not applied the write yet must keep
			// its hint across a crash: the ack promised they would get it.
			for _, w := range waiters {
				if w.l.appliedUpTo() < seq {
					if err := w.l.sync(); err != nil {
						return 0, tsstore.Errorf(tsstore.ErrUnavailable, "replicate: write %d: fsync of the hints of replica %s: %w", seq, w.l.name, err)
					}
				}
			}
		}
		for {
			cur := s.lastAcked.Load()
			if cur >= seq || s.lastAcked.CompareAndSwap(cur, seq) {
				break
			}
		}
		return seq, nil
	}
	return 0, s.writeError(ctx, seq, epoch, perr, errs, need, applied)
}

// writeError classifies a write that did not meet its ack level.
func (s *Store) writeError(ctx context.Context, seq, epoch uint64, perr error, errs []error, need, applied int) error {
	joined := errors.Join(errs...)
	for _, e := range errs {
		if errors.Is(e, ErrFenced) {
			if s.epoch.Load() > epoch {
				// This Store promoted a replica (and fenced the others)
				// while the write was on its way: not a newer writer.
				return tsstore.Errorf(tsstore.ErrUnavailable, "replicate: write %d at epoch %d: a promotion to epoch %d happened meanwhile, retry: %w", seq, epoch, s.epoch.Load(), joined)
			}
			s.setFenced(e)
			return tsstore.Errorf(tsstore.ErrConflict, "replicate: write %d at epoch %d refused, a newer epoch fenced this store: %w (all: %v)", seq, epoch, ErrFenced, joined)
		}
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("replicate: write %d: %w (replicas: %v)", seq, err, joined)
	}
	if perr != nil && errors.Is(perr, tsstore.ErrConflict) {
		return fmt.Errorf("replicate: write %d: %w", seq, errs[0])
	}
	if perr != nil {
		return tsstore.Errorf(tsstore.ErrUnavailable, "replicate: write %d: ack level %s not met, the primary failed: %w", seq, s.opts.Ack, joined)
	}
	return tsstore.Errorf(tsstore.ErrUnavailable, "replicate: write %d: ack level %s not met: %d of the %d standbys required applied it: %w", seq, s.opts.Ack, applied, need, joined)
}

func (s *Store) setFenced(err error) {
	if s.fenced.CompareAndSwap(nil, &err) {
		s.log.Error("replicate: this store is fenced by a newer epoch; writes are refused", "epoch", s.epoch.Load(), "err", err)
	}
}

func (s *Store) fencedErr() error {
	if p := s.fenced.Load(); p != nil {
		return tsstore.Errorf(tsstore.ErrConflict, "replicate: write refused, a newer epoch fenced this store (epoch %d): %w", s.epoch.Load(), *p)
	}
	return nil
}

type minSeqKey struct{}

// WithMinSeq returns a context under which Store reads go only to a
// replica that has applied every write up to seq (from WriteSeq or
// LastAcked): read-your-writes. Without it reads require LastAcked at the
// time of the read; WithMinSeq(ctx, 0) allows any healthy replica that is
// not stale.
func WithMinSeq(ctx context.Context, seq uint64) context.Context {
	return context.WithValue(ctx, minSeqKey{}, seq)
}

func (s *Store) minSeq(ctx context.Context) uint64 {
	if v, ok := ctx.Value(minSeqKey{}).(uint64); ok {
		return v
	}
	return s.lastAcked.Load()
}

// router returns a read router over the replicas that applied min.
func (s *Store) router(min uint64) *balancer.StoreRouter {
	return balancer.NewStoreRouter(s.bal, &balancer.RouterOptions{
		Attempts: len(s.links),
		Eligible: func(id string, _ tsstore.Store) bool {
			l := s.link(id)
			if l == nil {
				return false
			}
			l.mu.Lock()
			defer l.mu.Unlock()
			return l.stale == nil && l.appliedLocked() >= min
		},
	})
}

func (s *Store) link(name string) *link {
	for _, l := range s.links {
		if l.name == name {
			return l
		}
	}
	return nil
}

// Query answers q from a healthy replica that has applied every
// acknowledged write (or the writes named by WithMinSeq), retrying on
// another after a retryable error. When none qualifies the error is of
// kind tsstore.ErrUnavailable.
func (s *Store) Query(ctx context.Context, q tsstore.Query) (*tsstore.Result, error) {
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return nil, tsstore.Errorf(tsstore.ErrClosed, "replicate: query")
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := q.Validate(s.width); err != nil {
		return nil, fmt.Errorf("replicate: query: %w", err)
	}
	min := s.minSeq(ctx)
	if err := s.awaitReadable(ctx, min); err != nil {
		return nil, fmt.Errorf("replicate: query: %w", err)
	}
	return s.router(min).Query(ctx, q)
}

// Cells returns the cells selected by sel from a replica chosen as for
// Query.
func (s *Store) Cells(ctx context.Context, sel tsstore.Selector) ([]tsstore.Cell, error) {
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return nil, tsstore.Errorf(tsstore.ErrClosed, "replicate: cells")
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := sel.Validate(); err != nil {
		return nil, fmt.Errorf("replicate: cells: %w", err)
	}
	min := s.minSeq(ctx)
	if err := s.awaitReadable(ctx, min); err != nil {
		return nil, fmt.Errorf("replicate: cells: %w", err)
	}
	return s.router(min).Cells(ctx, sel)
}

// awaitReadable waits, up to AckTimeout, until a healthy replica that is
// not stale has applied every write up to seq: a replica that is replaying
// a hint catches up in moments, and a read should not fail meanwhile.
func (s *Store) awaitReadable(ctx context.Context, seq uint64) error {
	wait := 100 * time.Microsecond
	deadline := time.Now().Add(s.opts.AckTimeout)
	for {
		for _, l := range s.links {
			l.mu.Lock()
			ok := l.healthy && l.stale == nil && l.appliedLocked() >= seq
			l.mu.Unlock()
			if ok {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return tsstore.Errorf(tsstore.ErrUnavailable, "no healthy replica has applied write %d after %v", seq, s.opts.AckTimeout)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		wait = min(2*wait, 20*time.Millisecond)
	}
}

// LastAcked returns the sequence number of the newest acknowledged write.
func (s *Store) LastAcked() uint64 { return s.lastAcked.Load() }

// Epoch returns the Store's epoch: 1, plus one per promotion.
func (s *Store) Epoch() uint64 { return s.epoch.Load() }

// Primary returns the name of the current primary.
func (s *Store) Primary() string {
	s.order.Lock()
	defer s.order.Unlock()
	return s.primary.name
}

// Close stops the appliers and the monitor, fsyncs and closes the hint
// logs (pending hints are replayed by the next Store opened on Dir) and
// closes the balancer. It does not close the replicas. Later calls fail
// with tsstore.ErrClosed; Close returns nil again.
func (s *Store) Close() error {
	s.closeMu.Lock()
	if s.closed {
		s.closeMu.Unlock()
		return nil
	}
	s.closed = true
	s.closeMu.Unlock()
	s.cancel()
	s.wg.Wait()
	var errs []error
	for _, l := range s.links {
		if err := l.sync(); err != nil {
			errs = append(errs, fmt.Errorf("replica %s: %w", l.name, err))
		}
	}
	s.closeLogs()
	_ = s.bal.Close()
	if len(errs) > 0 {
		return fmt.Errorf("replicate: close: fsync of hints: %w", errors.Join(errs...))
	}
	return nil
}

func (s *Store) closeLogs() {
	for _, l := range s.links {
		l.mu.Lock()
		if l.log != nil {
			l.log.close()
		}
		l.mu.Unlock()
	}
}
