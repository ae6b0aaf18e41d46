package cluster

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/shoalmesh/shoal/sdk/balancer"
	"github.com/shoalmesh/shoal/sdk/call"
	"github.com/shoalmesh/shoal/sdk/mesh"
)

// Invoke picks endpoints from t and sends the call with invoke until it
// succeeds or the strategy gives up, returning the last error (every try's
// error, when there were several). It stops when ctx ends or info.Deadline
// passes, and never sleeps a backoff past info.Deadline.
func (s *Strategy) Invoke(ctx context.Context, info *call.Info, t Target, req, resp any, invoke Invoker) error {
	c := tries{s: s, t: t}
	defer c.release()
	for {
		p, err := c.pick(ctx, info)
		if err != nil {
			return c.giveUp(info, err)
		}
		perTry, err := s.try(ctx, p.Endpoint, info, req, resp, invoke)
		c.done(p, err)
		if err == nil {
			return nil
		}
		if !c.again(ctx, info, err, perTry) {
			return c.result(info)
		}
	}
}

// try sends one try, under the per-try timeout when one is set and the
// call's own deadline is further away; perTry reports that the per-try
// timeout cut it.
func (s *Strategy) try(ctx context.Context, ep *mesh.Endpoint, info *call.Info, req, resp any, invoke Invoker) (perTry bool, err error) {
	if s.perTry <= 0 || !info.Deadline.IsZero() && time.Until(info.Deadline) <= s.perTry {
		return false, invoke(ctx, ep, info, req, resp) // the call's deadline comes first
	}
	tctx, cancel := context.WithTimeout(ctx, s.perTry)
	defer cancel()
	err = invoke(tctx, ep, info, req, resp)
	if err != nil && ctx.Err() == nil && !info.Expired() && errors.Is(tctx.Err(), context.DeadlineExceeded) {
		return true, &perTryTimeout{err: err, d: s.perTry}
	}
	return false, err
}

// tries is the bookkeeping of one call's tries, unary or stream: the
// endpoints tried, their errors, and the retry place it holds.
type tries struct {
	s       *Strategy
	t       Target
	n       uint32 // tries ended
	tried   []*mesh.Endpoint
	errs    []error
	inRetry bool
}

func (c *tries) pick(ctx context.Context, info *call.Info) (balancer.PickResult, error) {
	return c.t.Pick(balancer.PickInfo{Ctx: ctx, Call: info, Tried: c.tried})
}

// done records that the try on p ended with err.
func (c *tries) done(p balancer.PickResult, err error) {
	c.n++
	c.release()
	if p.Done != nil {
		p.Done(balancer.DoneInfo{Err: err})
	}
	if o, ok := c.t.(TryObserver); ok {
		o.TryDone(p.Endpoint, err)
	}
	if err != nil {
		c.tried = append(c.tried, p.Endpoint)
		c.errs = append(c.errs, err)
	}
}

// again reports whether the call goes on after a failed try, and waits the
// backoff when it does.
func (c *tries) again(ctx context.Context, info *call.Info, err error, perTry bool) bool {
	if ctx.Err() != nil || info.Expired() || c.n > c.s.retries {
		return false
	}
	if !c.s.on.Retryable(err) && (!perTry || !c.s.perTryRetried) {
		return false
	}
	if l, ok := c.t.(RetryLimiter); ok {
		if !l.TakeRetry() {
			return false // retry budget spent: Envoy's max_retries circuit breaker
		}
		c.inRetry = true
	}
	if err := c.s.wait(ctx, info, c.n-1); err != nil {
		c.errs = append(c.errs, err)
		return false
	}
	return true
}

// release gives back the retry place, once the retry's try ended.
func (c *tries) release() {
	if c.inRetry {
		c.inRetry = false
		c.t.(RetryLimiter).ReleaseRetry()
	}
}

// giveUp ends the call on an error that is not a try's (no endpoint).
func (c *tries) giveUp(info *call.Info, err error) error {
	if len(c.errs) == 0 {
		return err
	}
	c.errs = append(c.errs, err)
	return c.result(info)
}

// result is the call's error: the only try's, or all of them.
func (c *tries) result(info *call.Info) error {
	last := c.errs[len(c.errs)-1]
	if len(c.errs) == 1 {
		return last
	}
	return &failedError{info: info.Path(), tried: c.tried, errs: c.errs, last: last}
}

// wait sleeps the backoff before retry n. A backoff that would outlast
// info.Deadline waits for the deadline and fails the call.
func (s *Strategy) wait(ctx context.Context, info *call.Info, n uint32) error {
	d := s.backoff.Delay(n, s.below)
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

// failedError reports every try; its status code is the last one's.
type failedError struct {
	info  string
	tried []*mesh.Endpoint
	errs  []error
	last  error
}

func (e *failedError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s failed after %d tries:", e.info, len(e.tried))
	for i, err := range e.errs {
		if i < len(e.tried) {
			fmt.Fprintf(&b, "\n  try %d on %s: %v", i+1, e.tried[i].Address, err)
		} else {
			fmt.Fprintf(&b, "\n  then: %v", err)
		}
	}
	return b.String()
}

func (e *failedError) Unwrap() []error { return e.errs }

// StatusCode is the last error's code, so callers see why the call failed.
func (e *failedError) StatusCode() call.Code { return call.CodeOf(e.last) }
