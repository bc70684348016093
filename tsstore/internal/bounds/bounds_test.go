package bounds_test

import (
	"fmt"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/hourglass-io/hourglass/tsstore/internal/bounds"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRememberRaise(t *testing.T) {
	var tb bounds.Table[string]
	tb.SetLimit(10)
	s := bounds.Stripe("a")
	unlock := tb.Lock(1, func(int) int { return s })
	defer unlock()
	if _, ok := tb.Get(s, "a"); ok {
		t.Fatal("a bound before Remember")
	}
	tb.Raise(s, "a", 5)
	if _, ok := tb.Get(s, "a"); ok {
		t.Fatal("Raise made a bound without a read")
	}
	tb.Remember(s, "a", 10)
	tb.Raise(s, "a", 7)
	if b, ok := tb.Get(s, "a"); !ok || b != 10 {
		t.Fatalf("after Raise below: %d, %v; want 10", b, ok)
	}
	tb.Raise(s, "a", 12)
	if b, _ := tb.Get(s, "a"); b != 12 {
		t.Fatalf("after Raise above: %d; want 12", b)
	}
}

func TestDisabled(t *testing.T) {
	for _, n := range []int{0, -1} {
		var tb bounds.Table[string]
		tb.SetLimit(n)
		if tb.Enabled() {
			t.Fatalf("SetLimit(%d): Enabled", n)
		}
		tb.Remember(0, "a", 1)
		if _, ok := tb.Get(0, "a"); ok {
			t.Fatalf("SetLimit(%d): a bound was kept", n)
		}
	}
}

func TestEviction(t *testing.T) {
	var tb bounds.Table[int]
	tb.SetLimit(2 * bounds.Stripes) // 2 per stripe
	if !tb.Enabled() {
		t.Fatal("not Enabled")
	}
	for k := range 5 {
		tb.Remember(3, k, int64(k))
	}
	n := 0
	for k := range 5 {
		if b, ok := tb.Get(3, k); ok {
			n++
			if b != int64(k) {
				t.Fatalf("bound of %d = %d", k, b)
			}
		}
	}
	if n != 2 {
		t.Fatalf("%d series kept in a stripe of 2", n)
	}
	if _, ok := tb.Get(3, 4); !ok {
		t.Fatal("the series just remembered was evicted")
	}
	tb.Remember(3, 4, 40) // a known series evicts nothing
	if b, _ := tb.Get(3, 4); b != 40 {
		t.Fatalf("bound of 4 = %d, want 40", b)
	}
}

func TestLockSerializes(t *testing.T) {
	var tb bounds.Table[string]
	tb.SetLimit(1000)
	keys := make([]string, 20)
	for i := range keys {
		keys[i] = fmt.Sprint("series", i)
	}
	stripe := func(i int) int { return bounds.Stripe(keys[i%len(keys)]) }
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for r := range 200 {
				unlock := tb.Lock(2*len(keys), stripe) // repetitions
				for i, k := range keys {
					if _, ok := tb.Get(stripe(i), k); !ok {
						tb.Remember(stripe(i), k, 0)
					}
					tb.Raise(stripe(i), k, int64(g*1000+r))
				}
				unlock()
			}
		})
	}
	wg.Wait()
	for i, k := range keys {
		if _, ok := tb.Get(stripe(i), k); !ok {
			t.Fatalf("%s has no bound", k)
		}
	}
}

func TestStripe(t *testing.T) {
	if a, b := bounds.Stripe("x"), bounds.Stripe("x"); a != b || a < 0 || a >= bounds.Stripes {
		t.Fatalf("Stripe(x) = %d, %d", a, b)
	}
}
