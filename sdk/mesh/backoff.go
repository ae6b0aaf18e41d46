package mesh

import "time"

// Backoff is an exponential backoff with full jitter: before retry n
// (0-based) the caller waits a random time in [0, min(Base*2^n, Max)).
// It is the one backoff of Shoal: the consumer's retries (sdk/cluster),
// router-mesh's route retries and the xDS client's reconnects all draw
// their waits from it.
type Backoff struct {
	// Base is the first interval; 0 means 25ms, Envoy's default.
	Base time.Duration
	// Max caps the interval; 0 means 10 times Base.
	Max time.Duration
}

// DefaultBackoffBase is Envoy's default base retry interval.
const DefaultBackoffBase = 25 * time.Millisecond

// Interval returns the upper bound of the wait before retry n (0-based),
// with the defaults applied.
func (b Backoff) Interval(n uint32) time.Duration {
	base := b.Base
	if base <= 0 {
		base = DefaultBackoffBase
	}
	maxInterval := b.Max
	if maxInterval <= 0 {
		maxInterval = 10 * base
	}
	d := base
	for i := uint32(0); i < n && d < maxInterval; i++ {
		d *= 2
	}
	return min(d, maxInterval)
}

// Delay returns the wait before retry n: uniform in [0, Interval(n)),
// drawn with below, which must return a uniform value in [0, limit) for
// limit > 0 (math/rand/v2's Uint64N, or a seeded source for tests).
func (b Backoff) Delay(n uint32, below func(limit uint64) uint64) time.Duration {
	limit := b.Interval(n)
	if limit <= 0 {
		return 0
	}
	return time.Duration(below(uint64(limit)))
}
