package balancer

import (
	"math/bits"
	"math/rand/v2"
	"sync"
)

// Option configures a built-in balancer.
type Option interface{ apply(*options) }

type options struct {
	seeded      bool
	seed        uint64
	choiceCount int
	minRing     uint64
	maxRing     uint64
	hashHeader  string
}

type optionFunc func(*options)

func (f optionFunc) apply(o *options) { f(o) }

// WithSeed makes the balancer's random choices deterministic: each balancer
// it builds draws from a math/rand/v2 PCG seeded with seed. Without it the
// runtime's fast, unseeded source is used. A seeded source is shared by
// concurrent picks under a mutex, so use it for tests, not for speed.
func WithSeed(seed uint64) Option {
	return optionFunc(func(o *options) { o.seeded, o.seed = true, seed })
}

func newOptions(opts []Option) options {
	o := options{choiceCount: 2, minRing: 1024, maxRing: 8 << 20}
	for _, opt := range opts {
		opt.apply(&o)
	}
	return o
}

// source returns 64 random bits per call.
type source func() uint64

func (o *options) source() source {
	if !o.seeded {
		return rand.Uint64
	}
	var mu sync.Mutex
	r := rand.New(rand.NewPCG(o.seed, 0x5eed))
	return func() uint64 {
		mu.Lock()
		defer mu.Unlock()
		return r.Uint64()
	}
}

// uintn returns a uniform value in [0, n) for n > 0 (Lemire's multiply,
// without the rejection step: the bias is below 2^-32 for n < 2^32).
func (s source) uintn(n uint64) uint64 {
	hi, _ := bits.Mul64(s(), n)
	return hi
}
