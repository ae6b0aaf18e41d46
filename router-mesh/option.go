package routermesh

import (
	"log/slog"
	"maps"
	"time"

	"github.com/shoalmesh/shoal/sdk/balancer"
	"github.com/shoalmesh/shoal/sdk/mesh"
	"github.com/shoalmesh/shoal/sdk/observer"
)

// Option configures a Router.
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	seed       uint64
	seeded     bool
	balancers  *balancer.Registry // nil: balancer.Default, or seeded built-ins under WithSeed
	now        func() time.Time
	sleep      func(ctxDone <-chan struct{}, d time.Duration) bool
	logger     *slog.Logger
	maxMirrors int
	source     map[string]string
	// outlier applies to clusters whose policy carries none.
	outlier *mesh.OutlierDetection
	// obs is told about ejections, overflows, retries and faults.
	obs observer.Observer
}

func newConfig(opts []Option) config {
	c := config{
		now:        time.Now,
		sleep:      sleepCtx,
		logger:     slog.Default(),
		maxMirrors: 64,
	}
	for _, o := range opts {
		o.apply(&c)
	}
	c.obs = observer.OrNop(c.obs)
	if c.balancers == nil {
		c.balancers = balancer.Default
		if c.seeded {
			bo := balancer.WithSeed(c.seed)
			c.balancers = balancer.NewRegistry(balancer.RoundRobin(bo), balancer.Random(bo), balancer.LeastRequest(bo), balancer.RingHash(bo))
		}
	}
	return c
}

// WithSeed makes every random decision (weighted destinations, fault
// percentages, mirror percentages, retry back-off jitter, and the built-in
// balancers' choices unless WithBalancers is given) deterministic for a given
// sequence of calls. Without it the router seeds itself at random.
func WithSeed(seed uint64) Option {
	return optionFunc(func(c *config) { c.seed, c.seeded = seed, true })
}

// WithBalancers sets the balancer builders used for the clusters' load
// balancer kinds (default: balancer.Default).
func WithBalancers(r *balancer.Registry) Option {
	return optionFunc(func(c *config) { c.balancers = r })
}

// WithClock replaces the clock used for outlier ejection times, for tests.
func WithClock(now func() time.Time) Option {
	return optionFunc(func(c *config) { c.now = now })
}

// WithLogger sets the logger for state changes (ejections, updates).
func WithLogger(l *slog.Logger) Option {
	return optionFunc(func(c *config) { c.logger = l })
}

// WithDefaultOutlierDetection sets the outlier detection of every cluster
// whose policy has none. istiod's proxyless (grpc) generator does not send a
// DestinationRule's outlierDetection (see registry-istio's README), so this
// is how a consumer gets ejection behind istiod today; a policy that does
// carry outlier detection still wins.
func WithDefaultOutlierDetection(od mesh.OutlierDetection) Option {
	return optionFunc(func(c *config) { c.outlier = &od })
}

// WithMaxMirrors bounds the mirrored calls in flight at once (default 64);
// mirrors beyond it are dropped, never queued.
func WithMaxMirrors(n int) Option {
	return optionFunc(func(c *config) { c.maxMirrors = max(n, 0) })
}

func sleepCtx(done <-chan struct{}, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-done:
		return false
	}
}

// WithSourceLabels sets the consumer's own workload labels, which routes
// with sourceLabels matches compare against.
func WithSourceLabels(labels map[string]string) Option {
	return optionFunc(func(c *config) { c.source = maps.Clone(labels) })
}

// WithObserver reports outlier ejections, circuit-breaker overflows,
// retries and injected faults to o (the observability module's metrics
// implement it). A consumer built by the sdk's app passes its observer
// through router.EngineOptions; this option wins over that one.
func WithObserver(o observer.Observer) Option {
	return optionFunc(func(c *config) { c.obs = o })
}
