package balancer_test

import (
	"fmt"
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
