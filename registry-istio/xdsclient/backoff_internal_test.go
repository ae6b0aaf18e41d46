package xdsclient

import (
	"testing"
	"time"
)

// The delay grows by 1.6 per attempt from min, stops at max, and is
// jittered by +/-20%; 1,000 draws per attempt stay inside those bounds and
// are not all equal.
func TestBackoffDelay(t *testing.T) {
	const minDelay, maxDelay = 100 * time.Millisecond, 2 * time.Second
	want := float64(minDelay)
	for attempt := range 12 {
		if attempt > 0 {
			want = min(want*1.6, float64(maxDelay))
		}
		lo, hi := time.Duration(0.8*want), time.Duration(1.2*want)
		seen := map[time.Duration]bool{}
		for range 1000 {
			d := backoffDelay(minDelay, maxDelay, attempt)
			if d < lo || d > hi {
				t.Fatalf("attempt %d: delay %v outside [%v, %v]", attempt, d, lo, hi)
			}
			seen[d] = true
		}
		if len(seen) < 100 {
			t.Fatalf("attempt %d: only %d distinct delays in 1,000; jitter missing", attempt, len(seen))
		}
	}
}
