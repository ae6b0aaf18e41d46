package cluster

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/shoalmesh/shoal/sdk/balancer"
	"github.com/shoalmesh/shoal/sdk/call"
	"github.com/shoalmesh/shoal/sdk/filter"
	"github.com/shoalmesh/shoal/sdk/mesh"
)

// Target is the destination whose endpoints a call's tries go to.
// *balancer.Handle is one; routing engines add their own bookkeeping.
type Target interface {
	Pick(info balancer.PickInfo) (balancer.PickResult, error)
}

// TryObserver is optional on a Target: it hears how every try ended (a
// unary try, or a stream attempt once its status is known), after the
// pick's Done. router-mesh's outlier detection listens here.
type TryObserver interface {
	TryDone(ep *mesh.Endpoint, err error)
}

// RetryLimiter is optional on a Target: a retry must take a place before
// its backoff and gives it back when its try ends (Envoy's max_retries
// circuit breaker). TakeRetry reports false when none is free; the call
// then ends with its last error.
type RetryLimiter interface {
	TakeRetry() bool
	ReleaseRetry()
}

// Invoker sends one try of a unary call to one endpoint. It is usually a
// method value made once per consumer, so that calls do not allocate
// closures. It must end the try at info.Deadline when that is set.
type Invoker func(ctx context.Context, ep *mesh.Endpoint, info *call.Info, req, resp any) error

// StreamOpener opens one attempt of a stream on one endpoint.
type StreamOpener func(ctx context.Context, ep *mesh.Endpoint, info *call.Info) (filter.ClientStream, error)

// Strategy is how a call is tried over a cluster: once ([Failfast]) or
// again on other endpoints ([Failover], [FromRetryPolicy]). It is the one
// retry loop of Shoal: the consumer's default engine and router-mesh's
// routes both run their calls through it. Safe for concurrent use.
type Strategy struct {
	retries uint32
	on      mesh.RetryOn
	perTry  time.Duration
	// perTryRetried: a try cut by the per-try timeout is retried (Dubbo's
	// failover always; a mesh route only when its retryOn covers it).
	perTryRetried bool
	backoff       mesh.Backoff
	below         func(uint64) uint64
	maxBuffer     int
}

// Option configures Failover and FromRetryPolicy.
type Option interface{ apply(*Strategy) }

type optionFunc func(*Strategy)

func (f optionFunc) apply(s *Strategy) { f(s) }

// WithRetries sets how many times a failed call is retried after the first
// try (default 2, as Dubbo and Istio).
func WithRetries(n uint32) Option { return optionFunc(func(s *Strategy) { s.retries = n }) }

// WithRetryOn sets which failures are retried (default: connect-failure,
// refused-stream and unavailable).
func WithRetryOn(on mesh.RetryOn) Option { return optionFunc(func(s *Strategy) { s.on = on }) }

// WithPerTryTimeout bounds each unary try; a try that runs out of time is
// retried while the call's own deadline allows (as Envoy does). 0 means no
// bound. Streams have no per-try timeout.
func WithPerTryTimeout(d time.Duration) Option {
	return optionFunc(func(s *Strategy) { s.perTry = d })
}

// WithBackoff sets the wait between tries; see mesh.Backoff.
func WithBackoff(b mesh.Backoff) Option { return optionFunc(func(s *Strategy) { s.backoff = b }) }

// WithRand sets the source of the backoff jitter: below(n) returns a
// uniform value in [0, n). router-mesh passes its own, seedable source.
func WithRand(below func(n uint64) uint64) Option {
	return optionFunc(func(s *Strategy) { s.below = below })
}

// WithSeed makes the backoff jitter deterministic.
func WithSeed(seed uint64) Option {
	return optionFunc(func(s *Strategy) {
		var mu sync.Mutex
		r := rand.New(rand.NewPCG(seed, 0xfa11))
		s.below = func(n uint64) uint64 {
			mu.Lock()
			defer mu.Unlock()
			return r.Uint64N(n)
		}
	})
}

// DefaultStreamBuffer is how many bytes of sent messages a stream keeps
// for replay on a retry (grpc-go's default per-RPC buffer). A stream that
// sends more is no longer retried.
const DefaultStreamBuffer = 256 << 10

// WithStreamBuffer sets how many bytes of sent messages a stream keeps for
// replay (default DefaultStreamBuffer); 0 turns stream retries off.
func WithStreamBuffer(n int) Option {
	return optionFunc(func(s *Strategy) { s.maxBuffer = max(n, 0) })
}

// DefaultRetryOn is what Failover retries unless told otherwise: failures
// that never reached a provider, and UNAVAILABLE.
var DefaultRetryOn = mesh.RetryOn{Conditions: mesh.RetryConnectFailure | mesh.RetryRefusedStream}.WithCodes(call.Unavailable)

var failfast = &Strategy{maxBuffer: DefaultStreamBuffer, below: rand.Uint64N}

// Failfast returns the strategy that tries once, on one endpoint.
func Failfast() *Strategy { return failfast }

// Failover returns the strategy that retries failed calls on other
// endpoints. Failures its RetryOn does not accept (business errors,
// INVALID_ARGUMENT, ...) return at once; so does a call whose context ends.
// A try cut by its per-try timeout is retried.
func Failover(opts ...Option) *Strategy {
	s := &Strategy{retries: 2, on: DefaultRetryOn, perTryRetried: true, below: rand.Uint64N, maxBuffer: DefaultStreamBuffer}
	for _, o := range opts {
		o.apply(s)
	}
	return s
}

// FromRetryPolicy returns the strategy a mesh route's retry policy
// describes, or Failfast for a nil policy or zero attempts. As Envoy does,
// a try cut by the per-try timeout is retried only when the policy's
// retryOn covers timeouts (5xx, gateway-error or deadline-exceeded). opts
// come after the policy's own settings (WithRand, WithStreamBuffer).
func FromRetryPolicy(p *mesh.RetryPolicy, opts ...Option) *Strategy {
	if p == nil || p.Attempts == 0 {
		return Failfast()
	}
	s := Failover(append([]Option{WithRetries(p.Attempts), WithRetryOn(p.On), WithPerTryTimeout(p.PerTryTimeout), WithBackoff(p.Backoff)}, opts...)...)
	s.perTryRetried = p.On.Has(mesh.Retry5xx) || p.On.Has(mesh.RetryGatewayError) || p.On.HasCode(call.DeadlineExceeded)
	return s
}

// Name is "failfast" for a strategy that never retries, else "failover".
func (s *Strategy) Name() string {
	if s.retries == 0 {
		return "failfast"
	}
	return "failover"
}

// Retries is how many times a failed call is retried after its first try.
func (s *Strategy) Retries() uint32 { return s.retries }

// Deadline returns when a call with timeout d must end: now+d when d > 0
// and ctx has no deadline as early, else the zero time (ctx bounds the
// call). The consumer stores it in call.Info.Deadline.
func Deadline(ctx context.Context, d time.Duration) time.Time {
	if d <= 0 {
		return time.Time{}
	}
	at := time.Now().Add(d)
	if dl, ok := ctx.Deadline(); ok && !dl.After(at) {
		return time.Time{}
	}
	return at
}

// WithTimeout returns ctx bounded by d when d > 0 and ctx has no earlier
// deadline, as a per-call timeout; the cancel function must be called.
func WithTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if d <= 0 {
		return ctx, func() {}
	}
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= d {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, d)
}
