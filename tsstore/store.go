package tsstore

import (
	"context"
	"time"
)

// Store keeps cells and answers queries over them. All methods are safe for
// concurrent use. After Close every method returns an error of kind
// ErrClosed (Close itself returns nil again).
type Store interface {
	// Write stores cells. Writing a cell whose identity is stored with the
	// same Agg is a no-op, so a retried flush is harmless; with a different
	// Agg it fails with ErrConflict and that cell is not changed. Invalid
	// cells fail the whole call with ErrInvalid before anything is stored.
	// Other cells of a batch that failed with ErrConflict or ErrUnavailable
	// may or may not be stored; retrying the batch is always safe.
	Write(ctx context.Context, cells []Cell) error

	// Query returns the bucketed aggregates of q (see Query for the exact
	// semantics; Aggregate is the reference). Invalid queries fail with
	// ErrInvalid.
	Query(ctx context.Context, q Query) (*Result, error)

	// Cells returns the stored cells selected by sel, every partial on its
	// own, in no particular order. The write-back engine merges them with
	// its cache by identity.
	Cells(ctx context.Context, sel Selector) ([]Cell, error)

	// CellWidth returns the width of this store's cells.
	CellWidth() time.Duration

	// Close releases the store's resources, waiting for its background
	// work to stop.
	Close() error
}
