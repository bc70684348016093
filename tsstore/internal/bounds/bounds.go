// Package bounds keeps, per series a store has written, an upper bound of
// the times of the series' stored samples, behind lock stripes that also
// serialize the store's conflict check and write of a series.
//
// A cell after the bound of its series cannot collide with a stored one,
// so a store sends it without reading anything. A bound is established by
// one read and raised by every write of the store; it is only valid as
// long as nobody else writes the series. A Table holds a bounded number of
// series: adding one more to a full stripe evicts an arbitrary one, whose
// next write reads its bound again.
package bounds

import (
	"sync"

	"github.com/cespare/xxhash/v2"
)

// Stripes is the number of lock stripes of a Table.
const Stripes = 64

// Stripe returns the lock stripe of a series key.
func Stripe(series string) int { return int(xxhash.Sum64String(series) % Stripes) }

// Table maps series keys K to upper bounds of their stored times, striped:
// stripe i holds the series the caller puts there (see Stripe), guarded by
// lock i. The zero value keeps no bounds (see SetLimit) but locks. A Table
// must not be copied after first use.
type Table[K comparable] struct {
	locks     [Stripes]sync.Mutex
	m         [Stripes]map[K]int64
	perStripe int // 0: no bounds are kept
}

// SetLimit sets how many series the Table keeps bounds of, at most (rounded
// up to a multiple of Stripes); n <= 0 keeps none. Call it before first
// use.
func (t *Table[K]) SetLimit(n int) {
	t.perStripe = 0
	if n > 0 {
		t.perStripe = (n + Stripes - 1) / Stripes
	}
}

// Enabled reports whether the Table keeps bounds.
func (t *Table[K]) Enabled() bool { return t.perStripe > 0 }

// Lock locks the stripes stripe(0) ... stripe(n-1) (repetitions allowed),
// in order, and returns the function that unlocks them.
func (t *Table[K]) Lock(n int, stripe func(i int) int) (unlock func()) {
	var mask [Stripes]bool
	for i := range n {
		mask[stripe(i)] = true
	}
	for i := range mask {
		if mask[i] {
			t.locks[i].Lock()
		}
	}
	return func() {
		for i := range mask {
			if mask[i] {
				t.locks[i].Unlock()
			}
		}
	}
}

// Get returns the bound of series in stripe, if it is remembered. The
// stripe must be locked.
func (t *Table[K]) Get(stripe int, series K) (bound int64, ok bool) {
	bound, ok = t.m[stripe][series]
	return bound, ok
}

// Remember sets the bound of a series whose bound was just read, evicting
// an arbitrary series of the stripe when it is full. It does nothing when
// the Table keeps no bounds. The stripe must be locked.
func (t *Table[K]) Remember(stripe int, series K, bound int64) {
	if t.perStripe == 0 {
		return
	}
	m := t.m[stripe]
	if m == nil {
		m = make(map[K]int64)
		t.m[stripe] = m
	}
	if _, ok := m[series]; !ok && len(m) >= t.perStripe {
		for k := range m { // map order is random: an arbitrary victim
			delete(m, k)
			break
		}
	}
	m[series] = bound
}

// Raise raises the bound of a remembered series to ts (a sample about to
// be written). A series that is not remembered (never read, or evicted)
// stays so: a bound must start with a read. The stripe must be locked.
func (t *Table[K]) Raise(stripe int, series K, ts int64) {
	if b, ok := t.m[stripe][series]; ok && ts > b {
		t.m[stripe][series] = ts
	}
}
