package reprocess

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hourglass-io/hourglass/tsstore"
)

// Switchable is the tsstore.Store that serves reads from the live store
// and the current version, and can switch versions atomically. Give it to
// the live writeback.Engine as its store.
//
// Writes always go to the live store. Reads of the current version's range
// [From, Cutover) are answered by the version (for the series its filter
// selects; the others by the live store), reads of the rest by the live
// store; a query that spans a boundary is split there, in the query's own
// buckets, and merged. Since the version holds exactly the archived points
// of its range and the live store answers only outside it, a point is
// counted once, whichever side of the cut-over it is on.
//
// Switch is an atomic pointer swap: a query runs wholly against the
// version that was current when it started. Switching back (to an older
// version, or to "" for the live store alone) is a rollback; versions are
// never deleted. Safe for concurrent use.
type Switchable struct {
	live     tsstore.Store
	versions *Versions
	cur      atomic.Pointer[route]

	mu     sync.Mutex // guards open and closed
	open   map[string]tsstore.Store
	closed bool
}

// route is what a Switchable serves from a version.
type route struct {
	id            string
	store         tsstore.Store
	from, cutover int64
	filter        []tsstore.Matcher
}

var _ tsstore.Store = (*Switchable)(nil)

// NewSwitchable returns a Switchable over live that serves the catalog's
// current version (see Versions.Current), if any. It does not own live:
// Close closes only the versions it opened.
func NewSwitchable(live tsstore.Store, versions *Versions) (*Switchable, error) {
	s := &Switchable{live: live, versions: versions, open: map[string]tsstore.Store{}}
	id, err := versions.Current()
	if err != nil {
		return nil, err
	}
	if id != "" {
		r, err := s.route(id)
		if err != nil {
			_ = s.Close()
			return nil, err
		}
		s.cur.Store(r)
	}
	return s, nil
}

// route opens (once) the version id and describes it.
func (s *Switchable) route(id string) (*route, error) {
	lin, err := s.versions.Lineage(id)
	if err != nil {
		return nil, err
	}
	if !lin.Complete() {
		return nil, tsstore.Errorf(tsstore.ErrInvalid, "reprocess: version %s is not complete", id)
	}
	if w := s.live.CellWidth(); lin.CellWidth != w.Milliseconds() {
		return nil, tsstore.Errorf(tsstore.ErrInvalid, "reprocess: version %s has cells of %d ms, the live store of %v", id, lin.CellWidth, w)
	}
	filter, err := lin.matchers()
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, tsstore.Errorf(tsstore.ErrClosed, "reprocess: switch")
	}
	st := s.open[id]
	if st == nil {
		ps, err := s.versions.OpenStore(id)
		if err != nil {
			return nil, err
		}
		st = ps
		s.open[id] = st
	}
	return &route{id: id, store: st, from: lin.From, cutover: lin.Cutover, filter: filter}, nil
}

// Switch makes the version id serve reads of its range, recording it as
// the catalog's current version first; "" switches back to the live store
// alone. The version must be complete.
func (s *Switchable) Switch(id string) error {
	var r *route
	if id != "" {
		var err error
		if r, err = s.route(id); err != nil {
			return err
		}
	}
	if err := s.versions.SetCurrent(id); err != nil {
		return err
	}
	s.cur.Store(r)
	return nil
}

// Current returns the id of the version serving reads, "" for none.
func (s *Switchable) Current() string {
	if r := s.cur.Load(); r != nil {
		return r.id
	}
	return ""
}

// Write writes cells to the live store.
func (s *Switchable) Write(ctx context.Context, cells []tsstore.Cell) error {
	if err := s.enter("write"); err != nil {
		return err
	}
	return s.live.Write(ctx, cells)
}

// CellWidth returns the live store's cell width.
func (s *Switchable) CellWidth() time.Duration { return s.live.CellWidth() }

func (s *Switchable) enter(op string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return tsstore.Errorf(tsstore.ErrClosed, "reprocess: %s", op)
	}
	return nil
}

// piece is a time range served by one side.
type piece struct {
	from, to int64
	version  bool
}

// pieces cuts [from, to) at the route's range.
func (r *route) pieces(from, to int64) []piece {
	if r == nil || r.cutover <= from || r.from >= to {
		return []piece{{from, to, false}}
	}
	var out []piece
	if from < r.from {
		out = append(out, piece{from, r.from, false})
	}
	out = append(out, piece{max(from, r.from), min(to, r.cutover), true})
	if to > r.cutover {
		out = append(out, piece{r.cutover, to, false})
	}
	return out
}

// Query answers q from the live store and the current version, split at
// the version's range and merged in q's buckets.
func (s *Switchable) Query(ctx context.Context, q tsstore.Query) (*tsstore.Result, error) {
	if err := s.enter("query"); err != nil {
		return nil, err
	}
	r := s.cur.Load()
	if err := q.Validate(s.live.CellWidth()); err != nil {
		return nil, fmt.Errorf("reprocess: query: %w", err)
	}
	ps := r.pieces(q.From, q.To)
	if len(ps) == 1 && !ps[0].version {
		return s.live.Query(ctx, q)
	}
	b := tsstore.NewResultBuilder(&q)
	for _, p := range ps {
		for _, sub := range subQueries(&q, p.from, p.to) {
			if !p.version {
				if err := addResult(ctx, b, s.live, sub, nil); err != nil {
					return nil, err
				}
				continue
			}
			if r.filter == nil {
				if err := addResult(ctx, b, r.store, sub, nil); err != nil {
					return nil, fmt.Errorf("reprocess: version %s: %w", r.id, err)
				}
				continue
			}
			sub.GroupBy = nil
			if err := addResult(ctx, b, r.store, sub, func(ls tsstore.Labels) bool { return tsstore.MatchLabels(r.filter, ls) }); err != nil {
				return nil, fmt.Errorf("reprocess: version %s: %w", r.id, err)
			}
			if err := addResult(ctx, b, s.live, sub, func(ls tsstore.Labels) bool { return !tsstore.MatchLabels(r.filter, ls) }); err != nil {
				return nil, err
			}
		}
	}
	return b.Result(), nil
}

// subQueries cuts q's range [from, to) into queries whose buckets each lie
// within one bucket of q: a partial first bucket, the whole buckets, a
// partial last bucket. Every result bucket of a sub-query then starts in
// the bucket of q it belongs to.
func subQueries(q *tsstore.Query, from, to int64) []tsstore.Query {
	from, to = max(from, q.From), min(to, q.To)
	if from >= to {
		return nil
	}
	var out []tsstore.Query
	sub := func(a, b int64) {
		if a < b {
			s := *q
			s.From, s.To = a, b
			out = append(out, s)
		}
	}
	if bs := q.BucketStart(from); bs != from {
		end := min(bs+q.Step.Milliseconds(), to)
		sub(from, end)
		from = end
	}
	if from >= to {
		return out
	}
	last := q.BucketStart(to)
	if last < from {
		last = from
	}
	sub(from, last)
	sub(last, to)
	return out
}

// addResult queries st and merges the series that keep accepts (all when
// keep is nil) into b.
func addResult(ctx context.Context, b *tsstore.ResultBuilder, st tsstore.Store, q tsstore.Query, keep func(tsstore.Labels) bool) error {
	res, err := st.Query(ctx, q)
	if err != nil {
		return err
	}
	for _, sr := range res.Series {
		if keep != nil && !keep(sr.Labels) {
			continue
		}
		for _, bk := range sr.Buckets {
			b.Add(sr.Labels, bk.Start, bk.Agg)
		}
	}
	return nil
}

// Cells returns the selected cells from the live store and the current
// version, each from the side that serves its time and series.
func (s *Switchable) Cells(ctx context.Context, sel tsstore.Selector) ([]tsstore.Cell, error) {
	if err := s.enter("cells"); err != nil {
		return nil, err
	}
	if err := sel.Validate(); err != nil {
		return nil, fmt.Errorf("reprocess: cells: %w", err)
	}
	r := s.cur.Load()
	var out []tsstore.Cell
	for _, p := range r.pieces(sel.From, sel.To) {
		sub := sel
		sub.From, sub.To = p.from, p.to
		if !p.version {
			cs, err := s.live.Cells(ctx, sub)
			if err != nil {
				return nil, err
			}
			out = append(out, cs...)
			continue
		}
		cs, err := r.store.Cells(ctx, sub)
		if err != nil {
			return nil, fmt.Errorf("reprocess: version %s: %w", r.id, err)
		}
		if r.filter == nil {
			out = append(out, cs...)
			continue
		}
		for _, c := range cs {
			if tsstore.MatchLabels(r.filter, c.Labels) {
				out = append(out, c)
			}
		}
		ls, err := s.live.Cells(ctx, sub)
		if err != nil {
			return nil, err
		}
		for _, c := range ls {
			if !tsstore.MatchLabels(r.filter, c.Labels) {
				out = append(out, c)
			}
		}
	}
	return out, nil
}

// Close closes the versions the Switchable opened (not the live store).
// Later calls fail with tsstore.ErrClosed.
func (s *Switchable) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	var errs []error
	for _, st := range s.open {
		errs = append(errs, st.Close())
	}
	return errors.Join(errs...)
}
