package routermesh

import (
	"math/bits"
	"math/rand/v2"
	"sync/atomic"
)

// rng is the router's lock-free random source. Seeded, it is splitmix64
// over an atomic counter: for a given seed the n-th draw is always the same
// value, whichever goroutine makes it, so a sequential run is fully
// reproducible. Unseeded, it is the runtime's per-thread generator, which
// concurrent calls do not contend on.
type rng struct {
	seeded bool
	seed   uint64
	n      atomic.Uint64
}

func newRNG(seed uint64, seeded bool) *rng {
	return &rng{seeded: seeded, seed: seed}
}

func (r *rng) uint64() uint64 {
	if !r.seeded {
		return rand.Uint64()
	}
	z := r.seed + r.n.Add(1)*0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// below returns a value in [0, n) for n > 0: the high word of a 64x64-bit
// product, which avoids a division. Its bias is below n/2^64, far under
// anything a route's weights or a back-off can show.
func (r *rng) below(n uint64) uint64 {
	hi, _ := bits.Mul64(r.uint64(), n)
	return hi
}

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
