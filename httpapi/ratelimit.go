package httpapi

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// maxLimiters bounds the per-merchant limiters kept; beyond it the idle ones
// (whose bucket is full again) are dropped.
const maxLimiters = 100_000

// rateLimits is a token bucket per merchant. Safe for concurrent use.
type rateLimits struct {
	limit rate.Limit
	burst int

	mu sync.Mutex // guards m
	m  map[string]*rate.Limiter
}

// newRateLimits returns limits of r requests per second with bursts of burst
// per merchant; r = 0 means unlimited.
func newRateLimits(r float64, burst int) *rateLimits {
	return &rateLimits{limit: rate.Limit(r), burst: burst, m: map[string]*rate.Limiter{}}
}

// allow takes a token of merchant's bucket. When there is none it returns
// false and how long until there is one.
func (l *rateLimits) allow(merchant string, now time.Time) (bool, time.Duration) {
	if l.limit == 0 {
		return true, 0
	}
	l.mu.Lock()
	lim := l.m[merchant]
	if lim == nil {
		if len(l.m) >= maxLimiters {
			for k, v := range l.m {
				if v.TokensAt(now) >= float64(l.burst) {
					delete(l.m, k)
				}
			}
		}
		lim = rate.NewLimiter(l.limit, l.burst)
		l.m[merchant] = lim
	}
	l.mu.Unlock()
	r := lim.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}
