package replicate

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hourglass-io/hourglass/internal/atomicfile"
	"github.com/hourglass-io/hourglass/tsstore"
)

// ErrFenced is wrapped (with kind tsstore.ErrConflict) by the errors of
// writes refused because the writer's epoch is older than the replica's. It
// is tsstore.ErrFenced, so that a write-back engine over a replicated store
// tells a fenced writer from refused cells.
var ErrFenced = tsstore.ErrFenced

// Fencer is the optional capability of a replica that enforces fencing: it
// remembers the newest epoch it has seen and refuses writes from older
// epochs. A Store finds it by type assertion on each replica; a replica
// without it is written with plain Write and is not fenced.
type Fencer interface {
	// WriteEpoch writes cells on behalf of a writer at epoch. When the
	// replica has seen a newer epoch it refuses with an error of kind
	// tsstore.ErrConflict wrapping ErrFenced and stores nothing; when
	// epoch is newer than the replica's, the replica records it durably
	// before writing.
	WriteEpoch(ctx context.Context, epoch uint64, cells []tsstore.Cell) error
	// Fence raises the replica's epoch to epoch (durably) without writing,
	// so that writers of older epochs are refused from then on. Once it
	// returns, no write of an older epoch is in progress. Fencing with an
	// epoch older than the replica's fails like WriteEpoch.
	Fence(ctx context.Context, epoch uint64) error
	// Epoch returns the newest epoch the replica has seen.
	Epoch() uint64
}

// Fenced wraps a replica's store with an epoch fence kept in a small file:
// it implements Fencer and tsstore.Store. Wrap each replica once, where it
// is served, and hand the same *Fenced to every Store that writes to it
// (in this process, or behind the service that exposes the replica): the
// fence works because every writer goes through it.
//
// Plain Write carries no epoch: it is accepted only while the fence is at
// epoch 0 (no replicated writer has written yet), so a process that
// bypasses replication cannot write behind a Store's back.
//
// A Fenced is safe for concurrent use. Close closes the wrapped store.
type Fenced struct {
	s    tsstore.Store
	path string

	mu    sync.RWMutex // held shared by writes, exclusively to raise epoch
	epoch uint64       // guarded by mu
}

var (
	_ tsstore.Store = (*Fenced)(nil)
	_ Fencer        = (*Fenced)(nil)
)

// NewFenced returns s fenced by the epoch kept in the file at path (created
// when the epoch first rises; a missing file means epoch 0). Errors reading
// the file are of kind tsstore.ErrInvalid when it is malformed.
func NewFenced(s tsstore.Store, path string) (*Fenced, error) {
	f := &Fenced{s: s, path: path}
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("replicate: fence %s: %w", path, err)
	default:
		e, perr := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
		if perr != nil {
			return nil, tsstore.Errorf(tsstore.ErrInvalid, "replicate: fence %s: %w", path, perr)
		}
		f.epoch = e
	}
	return f, nil
}

// Unwrap returns the fenced store.
func (f *Fenced) Unwrap() tsstore.Store { return f.s }

// Epoch returns the newest epoch the fence has seen.
func (f *Fenced) Epoch() uint64 {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.epoch
}

func fencedError(replica, writer uint64) error {
	return tsstore.Errorf(tsstore.ErrConflict, "replicate: replica is at epoch %d, writer at epoch %d: %w", replica, writer, ErrFenced)
}

// Fence raises the epoch to epoch; see Fencer.
func (f *Fenced) Fence(ctx context.Context, epoch uint64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if epoch < f.epoch {
		return fencedError(f.epoch, epoch)
	}
	if epoch == f.epoch {
		return nil
	}
	if err := atomicfile.Write(f.path, []byte(strconv.FormatUint(epoch, 10)+"\n")); err != nil {
		return tsstore.Errorf(tsstore.ErrUnavailable, "replicate: fence %s: %w", f.path, err)
	}
	f.epoch = epoch
	return nil
}

// WriteEpoch writes cells for a writer at epoch; see Fencer.
func (f *Fenced) WriteEpoch(ctx context.Context, epoch uint64, cells []tsstore.Cell) error {
	f.mu.RLock()
	cur := f.epoch
	if epoch > cur {
		f.mu.RUnlock()
		if err := f.Fence(ctx, epoch); err != nil {
			return err
		}
		f.mu.RLock()
		cur = f.epoch
	}
	defer f.mu.RUnlock()
	if epoch < cur {
		return fencedError(cur, epoch)
	}
	return f.s.Write(ctx, cells)
}

// Write writes cells without an epoch: accepted only at epoch 0.
func (f *Fenced) Write(ctx context.Context, cells []tsstore.Cell) error {
	return f.WriteEpoch(ctx, 0, cells)
}

// Query queries the fenced store.
func (f *Fenced) Query(ctx context.Context, q tsstore.Query) (*tsstore.Result, error) {
	return f.s.Query(ctx, q)
}

// Cells reads the fenced store.
func (f *Fenced) Cells(ctx context.Context, sel tsstore.Selector) ([]tsstore.Cell, error) {
	return f.s.Cells(ctx, sel)
}

// CellWidth returns the fenced store's cell width.
func (f *Fenced) CellWidth() time.Duration { return f.s.CellWidth() }

// Close closes the fenced store.
func (f *Fenced) Close() error { return f.s.Close() }
