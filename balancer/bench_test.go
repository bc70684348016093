package balancer_test

import (
	"fmt"
	"github.com/hourglass-io/hourglass/balancer"
	"testing"
)

// BenchmarkPick measures the overhead of one Pick and its Done for every
// policy with 3 and 100 backends, on one goroutine.
//
//	go test -run '^$' -bench Pick -benchtime 200000x ./balancer
func BenchmarkPick(b *testing.B) {
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = fmt.Sprint("merchant-", i)
	}
	for _, p := range policies() {
		for _, n := range []int{3, 100} {
			b.Run(fmt.Sprintf("%s/%d", p.Name(), n), func(b *testing.B) {
				weights := make([]int, n)
				for i := range weights {
					weights[i] = 1
				}
				bal := newBalancer(b, p, nil, weights...)
				b.ReportAllocs()
				b.ResetTimer()
				for i := range b.N {
					c, err := bal.Pick(keys[i&1023])
					if err != nil {
						b.Fatal(err)
					}
					c.Done(nil)
				}
			})
		}
	}
}

// BenchmarkConsistentHashKeyMovement reports the share of 100000 keys that
// move when one of N backends leaves (ideal: 1/N), for N = 3, 10, 100.
//
//	go test -run '^$' -bench KeyMovement -benchtime 1x ./balancer
func BenchmarkConsistentHashKeyMovement(b *testing.B) {
	const keys = 100000
	for _, n := range []int{3, 10, 100} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			var share float64
			for range b.N {
				weights := make([]int, n)
				for i := range weights {
					weights[i] = 1
				}
				bal := newBalancer(b, balancer.ConsistentHash(nil), nil, weights...)
				home := func() []string {
					out := make([]string, keys)
					for i := range out {
						c, err := bal.Pick(fmt.Sprint("merchant-", i))
						if err != nil {
							b.Fatal(err)
						}
						out[i] = c.ID()
						c.Done(nil)
					}
					return out
				}
				before := home()
				bal.Remove(name(n / 2))
				after := home()
				moved := 0
				for i := range before {
					if before[i] != after[i] {
						moved++
					}
				}
				share = float64(moved) / keys
			}
			b.ReportMetric(share, "moved-share")
			b.ReportMetric(1/float64(n), "ideal-1/N")
		})
	}
}
