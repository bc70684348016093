package writeback

import "time"

// A cell with Start S receives points only while the wall clock is within
// [S-MaxFuture, S+width+MaxLate], a window of length W. Its Seq in
// generation g is g mod wms (the cell width in ms), so no cell may receive
// points in two generations wms apart: for every g, generation g+n (n =
// wms-1) must be sealed more than W after generation g+1 opened, that is
// after generation g was sealed.
//
// sealBucket guarantees it with a token bucket kept in time credit: every
// seal costs per, credit accrues with the clock up to burst*per, and a
// seal waits until there is per of credit. Right after the seal of g the
// credit is at most (burst-1)*per, so the n seals g+1..g+n need at least
// (n-burst+1)*per more time; per > W/(n-burst+1) makes that more than W.
//
// With the defaults (W = MaxLate+MaxFuture+width, about 6 days 1 hour;
// wms 60,000; burst 100) per is about 8.7 s: the steady rate is what a
// fixed spacing allows, and a manual Flush or Close after a timed flush
// does not wait. Credit starts at zero on New: the engine does not know
// when the previous process last sealed, and zero is never more than a
// continuing bucket would hold, so the guarantee holds across restarts
// (the first seal after New waits one per).
type sealBucket struct {
	per    time.Duration // the cost of one seal; 0: no limit
	burst  time.Duration // most credit: burst*per
	credit time.Duration
	at     time.Time // when credit was last brought up to date
}

// newSealBucket returns the bucket for cells of wms ms (wms >= 2) that
// receive points during windows of length w, with a burst of
// min(100, (wms-1)/100) seals, at least 1.
func newSealBucket(w time.Duration, wms int64, now time.Time) sealBucket {
	n := wms - 1
	burst := max(1, min(100, n/100))
	per := w/time.Duration(n-burst+1) + 1
	return sealBucket{per: per, burst: time.Duration(burst) * per, at: now}
}

// fixedSpacing returns the bucket of a fixed least spacing between seals
// (a burst of one); spacing <= 0 means no limit.
func fixedSpacing(spacing time.Duration, now time.Time) sealBucket {
	spacing = max(spacing, 0)
	return sealBucket{per: spacing, burst: spacing, at: now}
}

func (b *sealBucket) refill(now time.Time) {
	if d := now.Sub(b.at); d > 0 {
		b.credit = min(b.burst, b.credit+d)
		b.at = now
	}
}

// wait returns how long a seal must wait from now; 0 when it may go.
func (b *sealBucket) wait(now time.Time) time.Duration {
	if b.per == 0 {
		return 0
	}
	b.refill(now)
	return max(b.per-b.credit, 0)
}

// take charges one seal made at now.
func (b *sealBucket) take(now time.Time) {
	if b.per == 0 {
		return
	}
	b.refill(now)
	b.credit = max(b.credit-b.per, 0)
}
