package writeback

import (
	"testing"
	"time"

	"pgregory.net/rapid"
)

// sealAt runs the bucket as Engine.seal does: a seal requested at now goes
// at now plus its wait. It returns the time of the seal.
func sealAt(b *sealBucket, now time.Time) time.Time {
	now = now.Add(b.wait(now))
	if w := b.wait(now); w != 0 {
		panic("the bucket asks for another wait after its wait: " + w.String())
	}
	b.take(now)
	return now
}

// TestSealBucketSeqGuarantee requests seals at random times (bursts,
// quiet spells, restarts that start a new bucket) and checks the
// guarantee the pacing exists for: generation g+wms-1 is sealed more than
// W after generation g, so no cell's window of length W sees two
// generations whose Seq (g mod wms) collide. Small wms keep the runs
// short; the arithmetic is the same as for 60,000.
func TestSealBucketSeqGuarantee(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		wms := rapid.Int64Range(2, 3000).Draw(rt, "wms")
		w := time.Duration(rapid.Int64Range(1, int64(48*time.Hour)).Draw(rt, "W"))
		now := time.Unix(1_700_000_000, 0)
		b := newSealBucket(w, wms, now)
		var seals []time.Time
		n := int(3*wms) + 10
		for len(seals) < n {
			switch what := rapid.IntRange(0, 9).Draw(rt, "what"); {
			case what < 3: // a quiet spell, often about a burst's worth
				span := time.Duration(b.burst) * 2
				if rapid.Bool().Draw(rt, "long") {
					span = w
				}
				now = now.Add(time.Duration(rapid.Int64Range(0, int64(span)).Draw(rt, "quiet")))
			case what < 4: // a restart: a new engine, a new bucket
				b = newSealBucket(w, wms, now)
			default: // a run of seals, each requested as soon as the last went
				for k := rapid.IntRange(1, 2*int(wms)).Draw(rt, "run"); k > 0; k-- {
					now = sealAt(&b, now)
					seals = append(seals, now)
				}
			}
		}
		for g := 0; g+int(wms)-1 < len(seals); g++ {
			if d := seals[g+int(wms)-1].Sub(seals[g]); d <= w {
				rt.Fatalf("generations %d and %d sealed %v apart, not more than W = %v (wms %d)", g, g+int(wms)-1, d, w, wms)
			}
		}
	})
}

// TestSealBucketBurst checks the defaults: the first seal after New waits
// one period (about 8.7 s), and after a quiet time 100 seals go at once
// before the pacing resumes.
func TestSealBucketBurst(t *testing.T) {
	w := 6*24*time.Hour + time.Hour + time.Minute
	now := time.Unix(1_700_000_000, 0)
	b := newSealBucket(w, 60_000, now)
	if got := b.wait(now); got < 8*time.Second || got > 9*time.Second {
		t.Fatalf("first seal after New waits %v, want about 8.7 s", got)
	}
	now = now.Add(time.Hour)
	for i := range 100 {
		if got := b.wait(now); got != 0 {
			t.Fatalf("seal %d of a burst after an hour waits %v", i, got)
		}
		b.take(now)
	}
	if got := b.wait(now); got < 8*time.Second {
		t.Fatalf("seal 101 of the burst waits %v, want about 8.7 s", got)
	}
}

// TestFixedSpacing checks that a positive SealSpacing keeps its meaning:
// at least that much time between two seals, none at once after New.
func TestFixedSpacing(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	b := fixedSpacing(time.Second, now)
	if got := b.wait(now); got != time.Second {
		t.Fatalf("first seal waits %v, want 1s", got)
	}
	now = now.Add(time.Hour)
	b.take(now)
	if got := b.wait(now); got != time.Second {
		t.Fatalf("second seal right after waits %v, want 1s", got)
	}
	off := fixedSpacing(-1, now)
	if got := off.wait(now); got != 0 {
		t.Fatalf("disabled pacing waits %v", got)
	}
}
