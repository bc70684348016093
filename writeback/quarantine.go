package writeback

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hourglass-io/hourglass/tsstore"
)

// QuarantinedCell is a cell a store refused for good (tsstore.ErrConflict
// or tsstore.ErrInvalid) during a flush: kept by the cache, out of the
// store and out of queries, until Engine.Resubmit lands it.
type QuarantinedCell struct {
	// Cell is the refused cell with its store identity (Writer, Seq).
	Cell tsstore.Cell
	// Gen is the generation the cell was flushed from.
	Gen uint64
	// Reason is the store's error.
	Reason string
	// Time is when the store last refused the cell.
	Time time.Time
}

// QuarantineCache is the optional Cache capability that keeps refused
// cells durably, found by type assertion. Without it a flush that a store
// refuses for good fails (and is retried) as before. Safe for concurrent
// use.
type QuarantineCache interface {
	// Quarantine adds cells, durably before it returns; a cell whose
	// identity (tsstore.Cell.ID) is listed already replaces the entry.
	Quarantine(ctx context.Context, cells []QuarantinedCell) error
	// Quarantined lists the quarantined cells, in any order.
	Quarantined(ctx context.Context) ([]QuarantinedCell, error)
	// Release removes the cells with these identities; unknown ones are
	// ignored.
	Release(ctx context.Context, ids []tsstore.CellID) error
	// QuarantinedCount returns the number of quarantined cells; it must
	// be cheap.
	QuarantinedCount() int
}

// refusedForGood reports whether a store error refuses the cells for good:
// retrying the same cells cannot succeed. A fenced writer (tsstore.ErrFenced,
// of kind ErrConflict) is not: the refusal is about the writer's epoch, and
// the flush is retried like after an outage.
func refusedForGood(err error) bool {
	if errors.Is(err, tsstore.ErrFenced) {
		return false
	}
	return errors.Is(err, tsstore.ErrConflict) || errors.Is(err, tsstore.ErrInvalid)
}

// writeIsolating writes cells to the store. When the store refuses them
// for good it bisects them (rewriting a stored cell is a no-op, so the
// halves may be written again) down to the single cells it refuses, which
// it returns with the reasons; every other cell is stored. A retryable
// error stops it with that error.
func (e *Engine) writeIsolating(ctx context.Context, gen uint64, cells []tsstore.Cell) ([]QuarantinedCell, error) {
	err := e.store.Write(ctx, cells)
	if err == nil {
		return nil, nil
	}
	if !refusedForGood(err) {
		return nil, err
	}
	if e.quarantine == nil {
		return nil, fmt.Errorf("the store refused cells for good and the cache (%T) cannot quarantine them (it does not implement writeback.QuarantineCache), so the generation stays sealed: %w", e.cache, err)
	}
	var refused []QuarantinedCell
	var bisect func(cs []tsstore.Cell, err error) error
	bisect = func(cs []tsstore.Cell, err error) error {
		if len(cs) == 1 {
			refused = append(refused, QuarantinedCell{Cell: cs[0], Gen: gen, Reason: err.Error(), Time: e.opts.Now()})
			return nil
		}
		mid := len(cs) / 2
		for _, half := range [][]tsstore.Cell{cs[:mid], cs[mid:]} {
			err := e.store.Write(ctx, half)
			if err == nil {
				continue
			}
			if !refusedForGood(err) {
				return err
			}
			if err := bisect(half, err); err != nil {
				return err
			}
		}
		return nil
	}
	if err := bisect(cells, err); err != nil {
		return nil, err
	}
	return refused, nil
}

// quarantineCells keeps refused cells in the cache's quarantine, durably,
// and reports each one.
func (e *Engine) quarantineCells(ctx context.Context, refused []QuarantinedCell) error {
	if err := e.quarantine.Quarantine(ctx, refused); err != nil {
		return fmt.Errorf("quarantine %d refused cells: %w", len(refused), err)
	}
	for i := range refused {
		q := &refused[i]
		e.log.Error("writeback: the store refused a cell for good; it is quarantined (list and resubmit it with Engine.Quarantined and Engine.Resubmit)",
			"cell", fmt.Sprintf("%s%s@%s", q.Cell.Metric, q.Cell.Labels, tsstore.TimeOf(q.Cell.Start).Format(time.RFC3339)),
			"writer", q.Cell.Writer, "seq", q.Cell.Seq, "generation", q.Gen, "reason", q.Reason)
	}
	e.stats.quarantined.Add(int64(len(refused)))
	return nil
}

// Quarantined lists the cells the store refused for good during flushes
// (tsstore.ErrConflict or tsstore.ErrInvalid), which the cache keeps
// durably instead of the store: each with its store identity, generation,
// the store's reason and when, sorted by generation, then Start, metric,
// labels, writer and Seq. They are not counted by Query or Cells.
// A cache without the QuarantineCache capability has none.
func (e *Engine) Quarantined(ctx context.Context) ([]QuarantinedCell, error) {
	if e.closed.Load() {
		return nil, tsstore.Errorf(tsstore.ErrClosed, "writeback: quarantined")
	}
	if e.quarantine == nil {
		return nil, nil
	}
	qs, err := e.quarantine.Quarantined(ctx)
	if err != nil {
		return nil, fmt.Errorf("writeback: quarantined: %w", err)
	}
	slices.SortFunc(qs, func(a, b QuarantinedCell) int {
		return cmp.Or(cmp.Compare(a.Gen, b.Gen), cmp.Compare(a.Cell.Start, b.Cell.Start), strings.Compare(a.Cell.Metric, b.Cell.Metric),
			a.Cell.Labels.Compare(b.Cell.Labels), strings.Compare(a.Cell.Writer, b.Cell.Writer), cmp.Compare(a.Cell.Seq, b.Cell.Seq))
	})
	return qs, nil
}

// ResubmitReport says what Resubmit did.
type ResubmitReport struct {
	// Landed are the cells the store took; they left the quarantine.
	Landed []QuarantinedCell
	// Refused are the cells the store refused again; they stay, with the
	// new reason and time.
	Refused []QuarantinedCell
}

// Resubmit writes quarantined cells to the store again, once the cause of
// the refusal is fixed: the cells with the given identities, or all of
// them when none are given. The cells the store takes leave the
// quarantine; the ones it refuses again stay with the new reason. It
// waits for a running flush. A retryable store error stops it with the
// error (nothing leaves the quarantine that did not land).
func (e *Engine) Resubmit(ctx context.Context, ids ...tsstore.CellID) (ResubmitReport, error) {
	var rep ResubmitReport
	if e.closed.Load() {
		return rep, tsstore.Errorf(tsstore.ErrClosed, "writeback: resubmit")
	}
	if e.quarantine == nil {
		return rep, nil
	}
	e.flushMu.Lock()
	defer e.flushMu.Unlock()
	qs, err := e.quarantine.Quarantined(ctx)
	if err != nil {
		return rep, fmt.Errorf("writeback: resubmit: %w", err)
	}
	if len(ids) > 0 {
		want := make(map[tsstore.CellID]bool, len(ids))
		for _, id := range ids {
			want[id] = true
		}
		kept := qs[:0]
		for _, q := range qs {
			if want[q.Cell.ID()] {
				kept = append(kept, q)
			}
		}
		qs = kept
	}
	if len(qs) == 0 {
		return rep, nil
	}
	byID := make(map[tsstore.CellID]QuarantinedCell, len(qs))
	cells := make([]tsstore.Cell, len(qs))
	for i, q := range qs {
		cells[i] = q.Cell
		byID[q.Cell.ID()] = q
	}
	refused, err := e.writeIsolating(ctx, 0, cells)
	if err != nil {
		return rep, fmt.Errorf("writeback: resubmit: store: %w", err)
	}
	for i := range refused {
		old := byID[refused[i].Cell.ID()]
		refused[i].Gen = old.Gen
		delete(byID, refused[i].Cell.ID())
	}
	if len(refused) > 0 {
		if err := e.quarantine.Quarantine(ctx, refused); err != nil {
			return rep, fmt.Errorf("writeback: resubmit: update the quarantine: %w", err)
		}
	}
	landed := make([]tsstore.CellID, 0, len(byID))
	for _, q := range qs {
		if _, ok := byID[q.Cell.ID()]; ok {
			landed = append(landed, q.Cell.ID())
			rep.Landed = append(rep.Landed, q)
		}
	}
	if err := e.quarantine.Release(ctx, landed); err != nil {
		return rep, fmt.Errorf("writeback: resubmit: release the landed cells: %w", err)
	}
	rep.Refused = refused
	return rep, nil
}
