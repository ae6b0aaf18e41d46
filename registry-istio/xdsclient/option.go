package xdsclient

import (
	"errors"
	"log/slog"
	"time"

	"google.golang.org/grpc"

	"github.com/shoalmesh/shoal/sdk/mesh"
)

// Option configures a Client.
type Option interface {
	apply(*config)
}

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	logger *slog.Logger
	// backoff spaces the stream retries (Base > 0 and Max >= Base here).
	backoff mesh.Backoff
	// probeAfter and probeEvery: while the next retry is further away than
	// probeAfter, istiod's address is dialled every probeEvery.
	probeAfter, probeEvery time.Duration
	dialOpts               []grpc.DialOption
	// notFound is how long a requested resource may go unanswered on a
	// working stream before it is reported as not existing.
	notFound time.Duration
}

func newConfig(opts []Option) (config, error) {
	c := config{
		logger:     slog.Default(),
		backoff:    mesh.Backoff{Base: 200 * time.Millisecond, Max: 30 * time.Second},
		probeAfter: time.Second,
		probeEvery: 500 * time.Millisecond,
		notFound:   15 * time.Second,
	}
	for _, o := range opts {
		o.apply(&c)
	}
	if c.backoff.Base <= 0 || c.backoff.Max < c.backoff.Base {
		return c, errors.New("registry-istio: WithBackoff needs 0 < min <= max")
	}
	if c.probeAfter < 0 || c.probeEvery < 0 {
		return c, errors.New("registry-istio: WithReconnectProbe needs durations >= 0")
	}
	if c.notFound <= 0 {
		return c, errors.New("registry-istio: WithResourceTimeout needs a positive duration")
	}
	if c.logger == nil {
		return c, errors.New("registry-istio: WithLogger(nil); pass a logger or leave the option out")
	}
	return c, nil
}

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option {
	return optionFunc(func(c *config) { c.logger = l })
}

// WithBackoff sets the reconnect delays, as an sdk/mesh.Backoff with Base
// min and Max max: before retry n the client waits a random time below
// min(min*2^n, max); a stream that got a response starts again from n = 0.
// Defaults: 200ms and 30s.
func WithBackoff(minDelay, maxDelay time.Duration) Option {
	return optionFunc(func(c *config) { c.backoff = mesh.Backoff{Base: minDelay, Max: maxDelay} })
}

// WithReconnectProbe sets how a long reconnect delay is cut short: while
// the next retry is more than after away, the client dials istiod's address
// (a TCP or unix connection, closed at once) every interval, and retries at
// once when the address accepts connections again after refusing them. So
// a restarted istiod is found within about interval, while a dead address
// gets one cheap dial per interval. Interval 0 turns probing off. Defaults:
// 1s and 500ms.
func WithReconnectProbe(after, interval time.Duration) Option {
	return optionFunc(func(c *config) { c.probeAfter, c.probeEvery = after, interval })
}

// WithResourceTimeout sets how long a requested resource may go unanswered
// on a working stream before its watchers are told it does not exist
// (default 15s, as grpc-go). Istiod answers unknown route configurations and
// endpoints with empty ones, so this matters for other management servers.
func WithResourceTimeout(d time.Duration) Option {
	return optionFunc(func(c *config) { c.notFound = d })
}

// WithDialOptions adds gRPC dial options, after the transport credentials
// the bootstrap implies.
func WithDialOptions(opts ...grpc.DialOption) Option {
	return optionFunc(func(c *config) { c.dialOpts = append(c.dialOpts, opts...) })
}
