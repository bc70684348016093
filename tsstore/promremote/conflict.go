package promremote

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/hourglass-io/hourglass/tsstore"
)

// The Store remembers, per series (metric, labels, writer) it has written
// since Open, an upper bound of the times of the series' stored samples:
// no sample of the series is stored after its bound. A cell after the bound
// cannot collide with a stored one, so Write sends it without reading
// anything. The bound of a series is established by one read (from the
// earliest cell of that first write to MaxReadSpan after the present) and
// raised by every write of the Store; it is only valid as long as nobody
// else writes the series, which holds for writer-scoped cells.
//
// The bounds are kept in a bounds.Table, striped by series key. It holds
// at most MaxTrackedSeries series; adding one more evicts an arbitrary
// one, whose next write reads its bound again.

// checkConflicts returns the cells of todo (sorted by series and time)
// that must be sent: it drops those stored with the same aggregate and
// fails with ErrConflict when one is stored with another. The caller holds
// the stripes of todo.
func (s *Store) checkConflicts(ctx context.Context, todo []pending) ([]pending, error) {
	// The series to read: those without a bound (from their first cell to
	// the far end), and those with cells at or before their bound.
	var reads []seriesRead
	now := time.Now().UnixMilli()
	for lo := 0; lo < len(todo); {
		hi := lo + 1
		for hi < len(todo) && todo[hi].series == todo[lo].series {
			hi++
		}
		p := todo[lo]
		b, known := s.bounds.Get(p.stripe, p.series)
		switch {
		case !known:
			reads = append(reads, seriesRead{cell: p.c, from: p.ts, to: min(max(todo[hi-1].ts, now)+s.readSpan, tsstore.MaxTimestamp-1), establish: true, stripe: p.stripe, key: p.series})
		case p.ts <= b:
			last := p.ts
			for j := lo; j < hi && todo[j].ts <= b; j++ {
				last = todo[j].ts
			}
			reads = append(reads, seriesRead{cell: p.c, from: p.ts, to: last, stripe: p.stripe, key: p.series})
		}
		lo = hi
	}
	if len(reads) > 0 {
		stored, err := s.readStored(ctx, reads)
		if err != nil {
			return nil, fmt.Errorf("promremote: write: conflict check: %w", err)
		}
		kept := todo[:0:0]
		for _, p := range todo {
			got, ok := stored[storedKey{p.series, p.ts}]
			if !ok {
				kept = append(kept, p)
				continue
			}
			want := [numComps]float64{float64(p.c.Count), p.c.Sum, p.c.Min, p.c.Max}
			for k := range want {
				if got.has&(1<<k) != 0 && !s.same(got.v[k], want[k]) {
					c := p.c
					return nil, tsstore.Errorf(tsstore.ErrConflict, "promremote: write: cell %d %s is stored with %s %v, not %+v; nothing of the batch was written",
						p.index, c.IDString(), components[k], got.v[k], c.Agg)
				}
			}
			if got.has != allComps { // a partial earlier write: send it whole
				kept = append(kept, p)
			}
		}
		todo = kept
		for _, r := range reads {
			if r.establish {
				s.bounds.Remember(r.stripe, r.key, r.newest)
			}
		}
	}
	// Raised before sending: whatever part of the batch a failed write
	// leaves stored is below the new bounds, so they stay upper bounds.
	for _, p := range todo {
		s.bounds.Raise(p.stripe, p.series, p.ts)
	}
	return todo, nil
}

// same reports whether a stored value a is the value b, to the precision
// the engine keeps.
func (s *Store) same(a, b float64) bool {
	if a == b {
		return true
	}
	return s.tolerance > 0 && math.Abs(a-b) <= s.tolerance*math.Max(math.Abs(a), math.Abs(b))
}
