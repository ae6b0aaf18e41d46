package xdsclient

import (
	"errors"
	"log/slog"
	"time"

	"google.golang.org/grpc"
)

// Option configures a Client.
type Option interface {
	apply(*config)
}

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	logger     *slog.Logger
	minBackoff time.Duration
	maxBackoff time.Duration
	dialOpts   []grpc.DialOption
	// notFound is how long a requested resource may go unanswered on a
	// working stream before it is reported as not existing.
	notFound time.Duration
}

func newConfig(opts []Option) (config, error) {
	c := config{
		logger:     slog.Default(),
		minBackoff: 200 * time.Millisecond,
		maxBackoff: 30 * time.Second,
		notFound:   15 * time.Second,
	}
	for _, o := range opts {
		o.apply(&c)
	}
	if c.minBackoff <= 0 || c.maxBackoff < c.minBackoff {
		return c, errors.New("registry-istio: WithBackoff needs 0 < min <= max")
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

// WithBackoff sets the reconnect delays: the first retry waits about min,
// each next one 1.6 times longer (plus or minus 20% jitter), at most max.
// Defaults: 200ms and 30s.
func WithBackoff(minDelay, maxDelay time.Duration) Option {
	return optionFunc(func(c *config) { c.minBackoff, c.maxBackoff = minDelay, maxDelay })
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
