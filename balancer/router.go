package balancer

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/hourglass-io/hourglass/tsstore"
)

// DefaultAttempts is the default of RouterOptions.Attempts.
const DefaultAttempts = 3

// RouterOptions configures a StoreRouter. A nil *RouterOptions means the
// defaults.
type RouterOptions struct {
	// Attempts is the most replicas one call tries; 0 means
	// DefaultAttempts.
	Attempts int
	// Eligible, when set, restricts each call to the usable replicas for
	// which it returns true (package replicate uses it to require a
	// replica that has caught up). nil means every usable replica.
	Eligible func(id string, replica tsstore.Store) bool
	// Key, when set, returns the affinity key of a read, for a
	// ConsistentHash balancer (for example the merchant matched by sel);
	// nil means "".
	Key func(sel tsstore.Selector) string
}

// StoreRouter routes reads over the replicas of a store registered in a
// Balancer[tsstore.Store]: each Query or Cells call goes to one usable
// replica chosen by the balancer's policy; when that replica fails with a
// retryable error (tsstore.IsRetryable: unavailable, back-pressure) the call
// is retried on a replica it has not tried yet, up to Attempts replicas.
// Each outcome is reported to the balancer: a retryable error counts as a
// failure of the replica (passive ejection, latency penalty), a success as
// a latency sample, any other error (invalid query, canceled context) as
// neither. Writes are not routed: that is replicate's job.
//
// A StoreRouter is safe for concurrent use. It does not own the balancer
// or the replicas: closing them is the caller's business.
type StoreRouter struct {
	b        *Balancer[tsstore.Store]
	attempts int
	eligible func(string, tsstore.Store) bool
	key      func(tsstore.Selector) string
}

// NewStoreRouter returns a router over the replicas registered in b.
func NewStoreRouter(b *Balancer[tsstore.Store], opts *RouterOptions) *StoreRouter {
	var o RouterOptions
	if opts != nil {
		o = *opts
	}
	return &StoreRouter{b: b, attempts: orInt(o.Attempts, DefaultAttempts), eligible: o.Eligible, key: o.Key}
}

// Query answers q from one replica, retrying on others as described on
// StoreRouter. When every attempt failed, the error wraps the last
// replica's error and is of kind ErrUnavailable.
func (r *StoreRouter) Query(ctx context.Context, q tsstore.Query) (*tsstore.Result, error) {
	return route(ctx, r, q.Selector(), "query", func(s tsstore.Store) (*tsstore.Result, error) { return s.Query(ctx, q) })
}

// Cells returns the cells selected by sel from one replica, retrying on
// others as described on StoreRouter.
func (r *StoreRouter) Cells(ctx context.Context, sel tsstore.Selector) ([]tsstore.Cell, error) {
	return route(ctx, r, sel, "cells", func(s tsstore.Store) ([]tsstore.Cell, error) { return s.Cells(ctx, sel) })
}

func route[T any](ctx context.Context, r *StoreRouter, sel tsstore.Selector, op string, call func(tsstore.Store) (T, error)) (T, error) {
	var zero T
	key := ""
	if r.key != nil {
		key = r.key(sel)
	}
	var tried []string
	var last error
	allow := func(id string, s tsstore.Store) bool {
		return !slices.Contains(tried, id) && (r.eligible == nil || r.eligible(id, s))
	}
	for range r.attempts {
		if err := ctx.Err(); err != nil {
			return zero, err
		}
		c, err := r.b.PickIf(key, allow)
		if err != nil {
			if last != nil {
				return zero, fmt.Errorf("%s: %s: %w", r.b.name, op, errors.Join(last, err))
			}
			return zero, fmt.Errorf("%s: %s: %w", r.b.name, op, err)
		}
		res, err := call(c.Backend())
		switch {
		case err == nil:
			c.Done(nil)
			return res, nil
		case tsstore.IsRetryable(err):
			c.Done(err)
			tried = append(tried, c.ID())
			last = fmt.Errorf("replica %s: %w", c.ID(), err)
		default:
			c.Release()
			return zero, fmt.Errorf("%s: %s on replica %s: %w", r.b.name, op, c.ID(), err)
		}
	}
	return zero, tsstore.Errorf(tsstore.ErrUnavailable, "%s: %s failed on %d replicas, last: %w", r.b.name, op, len(tried), last)
}
