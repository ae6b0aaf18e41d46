package routermesh

import (
	"math/rand/v2"
	"sync/atomic"
)

// rng is a lock-free random source: splitmix64 over an atomic counter. For a
// given seed the n-th draw is always the same value, whichever goroutine
// makes it, so a sequential run is fully reproducible.
type rng struct {
	seed uint64
	n    atomic.Uint64
}

func newRNG(seed uint64, seeded bool) *rng {
	if !seeded {
		seed = rand.Uint64()
	}
	return &rng{seed: seed}
}

func (r *rng) uint64() uint64 {
	z := r.seed + r.n.Add(1)*0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// below returns a uniform value in [0, n) for n > 0.
func (r *rng) below(n uint64) uint64 { return r.uint64() % n }

// chance reports true with probability percent/100 (0 to 100).
func (r *rng) chance(percent float64) bool {
	switch {
	case percent <= 0:
		return false
	case percent >= 100:
		return true
	}
	// 53 random bits as a float in [0, 1).
	return float64(r.uint64()>>11)/(1<<53) < percent/100
}
