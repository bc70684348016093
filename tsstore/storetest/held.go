package storetest

import (
	"context"
	"sync"

	"github.com/hourglass-io/hourglass/tsstore"
)

// HeldStore wraps a Store and holds every Write until Let is called, so
// that a test can keep a flush running. Safe for concurrent use.
type HeldStore struct {
	tsstore.Store
	entered, release chan struct{}
	first, let       sync.Once
}

// Hold returns s with its Writes held.
func Hold(s tsstore.Store) *HeldStore {
	return &HeldStore{Store: s, entered: make(chan struct{}), release: make(chan struct{})}
}

// Entered is closed when the first Write arrives.
func (h *HeldStore) Entered() <-chan struct{} { return h.entered }

// Let lets every Write go on, now and later; calling it again does
// nothing.
func (h *HeldStore) Let() { h.let.Do(func() { close(h.release) }) }

// Write waits for Let (or the end of ctx), then writes.
func (h *HeldStore) Write(ctx context.Context, cells []tsstore.Cell) error {
	h.first.Do(func() { close(h.entered) })
	select {
	case <-h.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	return h.Store.Write(ctx, cells)
}
