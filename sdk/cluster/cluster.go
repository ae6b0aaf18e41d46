package cluster

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/shoalmesh/shoal/sdk/balancer"
	"github.com/shoalmesh/shoal/sdk/call"
	"github.com/shoalmesh/shoal/sdk/mesh"
)

// Picker chooses endpoints; *balancer.Handle is one.
type Picker interface {
	Pick(info balancer.PickInfo) (balancer.PickResult, error)
}

// Invoker sends one try of a call to one endpoint. It is usually a method
// value made once per consumer, so that calls do not allocate closures.
type Invoker func(ctx context.Context, ep *mesh.Endpoint, info *call.Info, req, resp any) error

// Strategy runs a call over a cluster.
type Strategy interface {
	// Name is "failfast" or "failover".
	Name() string
	// Invoke picks endpoints with p and sends the call with invoke until
	// it succeeds or the strategy gives up, returning the last error. A
	// strategy that retries stops when ctx ends or info.Deadline passes.
	Invoke(ctx context.Context, info *call.Info, p Picker, req, resp any, invoke Invoker) error
}

// Failfast returns the strategy that tries once, on one endpoint.
func Failfast() Strategy { return failfast{} }

type failfast struct{}

func (failfast) Name() string { return "failfast" }

func (failfast) Invoke(ctx context.Context, info *call.Info, p Picker, req, resp any, invoke Invoker) error {
	r, err := p.Pick(balancer.PickInfo{Ctx: ctx, Call: info})
	if err != nil {
		return err
	}
	err = invoke(ctx, r.Endpoint, info, req, resp)
	if r.Done != nil {
		r.Done(balancer.DoneInfo{Err: err})
	}
	return err
}

// Option configures Failover.
type Option interface{ apply(*failover) }

type optionFunc func(*failover)

func (f optionFunc) apply(o *failover) { f(o) }

// WithRetries sets how many times a failed call is retried after the first
// try (default 2, as Dubbo and Istio).
func WithRetries(n uint32) Option { return optionFunc(func(f *failover) { f.retries = n }) }

// WithRetryOn sets which failures are retried (default: connect-failure,
// refused-stream and unavailable).
func WithRetryOn(on mesh.RetryOn) Option { return optionFunc(func(f *failover) { f.on = on }) }

// WithPerTryTimeout bounds each try; a try that runs out of time is retried
// while the call's own deadline allows (as Envoy does). 0 means no bound.
func WithPerTryTimeout(d time.Duration) Option {
	return optionFunc(func(f *failover) { f.perTry = d })
}

// WithBackoff sets the wait between tries; see mesh.Backoff.
func WithBackoff(b mesh.Backoff) Option { return optionFunc(func(f *failover) { f.backoff = b }) }

// WithSeed makes the backoff jitter deterministic.
func WithSeed(seed uint64) Option {
	return optionFunc(func(f *failover) {
		var mu sync.Mutex
		r := rand.New(rand.NewPCG(seed, 0xfa11))
		f.randN = func(n int64) int64 {
			mu.Lock()
			defer mu.Unlock()
			return r.Int64N(n)
		}
	})
}

// DefaultRetryOn is what Failover retries unless told otherwise: failures
// that never reached a provider, and UNAVAILABLE.
var DefaultRetryOn = mesh.RetryOn{Conditions: mesh.RetryConnectFailure | mesh.RetryRefusedStream}.WithCodes(call.Unavailable)

// Failover returns the strategy that retries failed calls on other
// endpoints. Failures its RetryOn does not accept (business errors,
// INVALID_ARGUMENT, ...) return at once; so does a call whose context ends.
func Failover(opts ...Option) Strategy {
	f := &failover{retries: 2, on: DefaultRetryOn, randN: rand.Int64N}
	for _, o := range opts {
		o.apply(f)
	}
	return f
}

// FromRetryPolicy returns the failover a mesh retry policy describes, or
// Failfast for a nil policy or zero attempts.
func FromRetryPolicy(p *mesh.RetryPolicy) Strategy {
	if p == nil || p.Attempts == 0 {
		return Failfast()
	}
	return Failover(WithRetries(p.Attempts), WithRetryOn(p.On), WithPerTryTimeout(p.PerTryTimeout), WithBackoff(p.Backoff))
}

type failover struct {
	retries uint32
	on      mesh.RetryOn
	perTry  time.Duration
	backoff mesh.Backoff
	randN   func(int64) int64
}

func (*failover) Name() string { return "failover" }

func (f *failover) Invoke(ctx context.Context, info *call.Info, p Picker, req, resp any, invoke Invoker) error {
	var tried []*mesh.Endpoint
	var errs []error
	for attempt := uint32(0); ; attempt++ {
		r, err := p.Pick(balancer.PickInfo{Ctx: ctx, Call: info, Tried: tried})
		if err != nil {
			return f.giveUp(info, attempt, append(errs, err))
		}
		err = f.try(ctx, r.Endpoint, info, req, resp, invoke)
		if r.Done != nil {
			r.Done(balancer.DoneInfo{Err: err})
		}
		if err == nil {
			return nil
		}
		errs = append(errs, fmt.Errorf("try %d on %s: %w", attempt+1, r.Endpoint.Address, err))
		if ctx.Err() != nil || info.Expired() || attempt >= f.retries || !f.retryable(ctx, info, err) {
			return f.giveUp(info, attempt+1, errs)
		}
		tried = append(tried, r.Endpoint)
		if err := f.wait(ctx, info, attempt); err != nil {
			return f.giveUp(info, attempt+1, append(errs, err))
		}
	}
}

func (f *failover) try(ctx context.Context, ep *mesh.Endpoint, info *call.Info, req, resp any, invoke Invoker) error {
	if f.perTry <= 0 || !info.Deadline.IsZero() && time.Until(info.Deadline) <= f.perTry {
		return invoke(ctx, ep, info, req, resp) // the call's deadline comes first
	}
	tctx, cancel := context.WithTimeout(ctx, f.perTry)
	defer cancel()
	err := invoke(tctx, ep, info, req, resp)
	if err != nil && ctx.Err() == nil && !info.Expired() && errors.Is(tctx.Err(), context.DeadlineExceeded) {
		return &perTryTimeout{err: err, d: f.perTry}
	}
	return err
}

type perTryTimeout struct {
	err error
	d   time.Duration
}

func (e *perTryTimeout) Error() string {
	return fmt.Sprintf("per-try timeout of %s: %v", e.d, e.err)
}

func (e *perTryTimeout) Unwrap() error { return e.err }

// StatusCode reports DEADLINE_EXCEEDED for call.CodeOf.
func (e *perTryTimeout) StatusCode() call.Code { return call.DeadlineExceeded }

func (f *failover) retryable(ctx context.Context, info *call.Info, err error) bool {
	var pt *perTryTimeout
	if errors.As(err, &pt) {
		return ctx.Err() == nil && !info.Expired()
	}
	return f.on.Retryable(err)
}

// wait sleeps the backoff before the next try. A backoff that would
// outlast info.Deadline waits for the deadline and fails the call.
func (f *failover) wait(ctx context.Context, info *call.Info, attempt uint32) error {
	limit := f.backoff.Interval(attempt)
	if limit <= 0 {
		return nil
	}
	d := time.Duration(f.randN(int64(limit)))
	if d <= 0 {
		return nil
	}
	var expired error
	if !info.Deadline.IsZero() {
		if left := time.Until(info.Deadline); left <= d {
			d, expired = max(left, 0), call.DeadlineError(info)
		}
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return expired
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (f *failover) giveUp(info *call.Info, tries uint32, errs []error) error {
	last := errs[len(errs)-1]
	if len(errs) == 1 && tries <= 1 {
		return last
	}
	return &failedError{info: info.Path(), tries: tries, errs: errs, last: last}
}

// failedError reports every try; its status code is the last try's.
type failedError struct {
	info  string
	tries uint32
	errs  []error
	last  error
}

func (e *failedError) Error() string {
	return fmt.Sprintf("failover: %s failed after %d tries: %v", e.info, e.tries, errors.Join(e.errs...))
}

func (e *failedError) Unwrap() []error { return e.errs }

// StatusCode is the last try's code, so callers see why the call failed.
func (e *failedError) StatusCode() call.Code { return call.CodeOf(e.last) }

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
