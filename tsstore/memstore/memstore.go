// Package memstore is the reference in-memory tsstore.Store: simple enough to
// be obviously right, it is the oracle every other store and the write-back
// engine are tested against. It keeps everything in maps under one lock and
// is not meant for production volumes.
//
// # Concurrency
//
// A Store is safe for concurrent use.
//
// # Errors
//
// Errors are of the kinds in tsstore: ErrInvalid for bad cells and queries,
// ErrConflict for an identity written again with a different aggregate,
// ErrClosed after Close. Writes are all-or-nothing.
package memstore

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/hourglass-io/hourglass/tsstore"
)

// Options configures a Store. A nil *Options means the defaults.
type Options struct {
	// CellWidth is the width of cells; 0 means tsstore.DefaultCellWidth.
	CellWidth time.Duration
}

// Store is the in-memory reference Store. Create one with New.
type Store struct {
	width time.Duration

	mu     sync.RWMutex // guards series and closed
	series map[string]*series
	closed bool
}

type series struct {
	metric string
	labels tsstore.Labels
	cells  map[cellKey]tsstore.Agg
}

type cellKey struct {
	start  int64
	writer string
	seq    uint32
}

var _ tsstore.Store = (*Store)(nil)

// New returns an empty Store.
func New(opts *Options) *Store {
	w := tsstore.DefaultCellWidth
	if opts != nil && opts.CellWidth > 0 {
		w = opts.CellWidth
	}
	return &Store{width: w, series: make(map[string]*series)}
}

// CellWidth returns the width of the store's cells.
func (s *Store) CellWidth() time.Duration { return s.width }

// Write stores cells, all or nothing: it fails with ErrInvalid or
// ErrConflict before changing anything.
func (s *Store) Write(ctx context.Context, cells []tsstore.Cell) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := tsstore.ValidateCells(cells, s.width); err != nil {
		return fmt.Errorf("memstore: write: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return tsstore.Errorf(tsstore.ErrClosed, "memstore: write")
	}
	// Check every cell against the store and the batch before changing
	// anything.
	batch := make(map[tsstore.CellID]tsstore.Agg, len(cells))
	for i := range cells {
		c := &cells[i]
		id := c.ID()
		if prev, ok := batch[id]; ok && prev != c.Agg {
			return tsstore.Errorf(tsstore.ErrConflict, "memstore: cell %d %s appears twice in the batch with different aggregates", i, c.IDString())
		}
		batch[id] = c.Agg
		if se := s.series[id.Series]; se != nil {
			if prev, ok := se.cells[cellKey{c.Start, c.Writer, c.Seq}]; ok && prev != c.Agg {
				return tsstore.Errorf(tsstore.ErrConflict, "memstore: cell %d %s is stored as %+v, not %+v", i, c.IDString(), prev, c.Agg)
			}
		}
	}
	for i := range cells {
		c := &cells[i]
		key := tsstore.SeriesKey(c.Metric, c.Labels)
		se := s.series[key]
		if se == nil {
			se = &series{metric: c.Metric, labels: c.Labels.Copy(), cells: make(map[cellKey]tsstore.Agg)}
			s.series[key] = se
		}
		se.cells[cellKey{c.Start, c.Writer, c.Seq}] = c.Agg
	}
	return nil
}

// Query answers q with tsstore.Aggregate's semantics.
func (s *Store) Query(ctx context.Context, q tsstore.Query) (*tsstore.Result, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := q.Validate(s.width); err != nil {
		return nil, fmt.Errorf("memstore: query: %w", err)
	}
	b := tsstore.NewResultBuilder(&q)
	err := s.each(q.Selector(), func(se *series, k cellKey, a tsstore.Agg) {
		b.Add(se.labels, k.start, a)
	})
	if err != nil {
		return nil, err
	}
	return b.Result(), nil
}

// Cells returns the stored cells selected by sel.
func (s *Store) Cells(ctx context.Context, sel tsstore.Selector) ([]tsstore.Cell, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := sel.Validate(); err != nil {
		return nil, fmt.Errorf("memstore: cells: %w", err)
	}
	var out []tsstore.Cell
	err := s.each(sel, func(se *series, k cellKey, a tsstore.Agg) {
		out = append(out, tsstore.Cell{Metric: se.metric, Labels: se.labels.Copy(), Start: k.start, Writer: k.writer, Seq: k.seq, Agg: a})
	})
	return out, err
}

// each calls fn for every selected cell, under the read lock.
func (s *Store) each(sel tsstore.Selector, fn func(*series, cellKey, tsstore.Agg)) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return tsstore.Errorf(tsstore.ErrClosed, "memstore: read")
	}
	for _, se := range s.series {
		if se.metric != sel.Metric || !tsstore.MatchLabels(sel.Matchers, se.labels) {
			continue
		}
		for k, a := range se.cells {
			if k.start >= sel.From && k.start < sel.To {
				fn(se, k, a)
			}
		}
	}
	return nil
}

// Len returns the number of cells stored.
func (s *Store) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	n := 0
	for _, se := range s.series {
		n += len(se.cells)
	}
	return n
}

// Close marks the store closed and drops its data.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	s.series = nil
	return nil
}
