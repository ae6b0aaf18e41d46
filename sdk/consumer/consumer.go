package consumer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shoalmesh/shoal/sdk/balancer"
	"github.com/shoalmesh/shoal/sdk/call"
	"github.com/shoalmesh/shoal/sdk/cluster"
	"github.com/shoalmesh/shoal/sdk/filter"
	"github.com/shoalmesh/shoal/sdk/mesh"
	"github.com/shoalmesh/shoal/sdk/observer"
	"github.com/shoalmesh/shoal/sdk/registry"
	"github.com/shoalmesh/shoal/sdk/router"
)

// Transport opens connections to endpoints.
type Transport interface {
	// Dial returns a connection to ep. It is called on the first call to
	// an endpoint, not when the endpoint appears.
	Dial(ctx context.Context, ep *mesh.Endpoint) (Conn, error)
}

// Conn is a connection to one endpoint; it must be safe for concurrent use.
//
// A unary call's timeout arrives as info.Deadline. A Conn that implements
// [DeadlineConn] ends the call by it itself; for any other Conn the
// reference bounds ctx by it before calling Invoke.
type Conn interface {
	Invoke(ctx context.Context, info *call.Info, req, resp any) error
	NewStream(ctx context.Context, info *call.Info) (filter.ClientStream, error)
	Close() error
}

// DeadlineConn is a Conn whose Invoke ends the call at info.Deadline, when
// set, with DEADLINE_EXCEEDED, and tells the provider (grpc-timeout), as
// it does for a ctx deadline. The reference then derives no context per
// call. The Triple connections of package tri are DeadlineConns.
type DeadlineConn interface {
	Conn
	// EnforcesDeadline reports whether Invoke honours info.Deadline.
	EnforcesDeadline() bool
}

// Option configures a Reference.
type Option interface{ apply(*options) }

type options struct {
	balancer  balancer.Builder
	balancers *balancer.Registry
	strategy  *cluster.Strategy
	timeout   time.Duration
	filters   *filter.ClientChain
	logger    *slog.Logger
	engine    router.Engine
	grace     time.Duration
	waitReady bool
	obs       observer.Observer
}

type optionFunc func(*options)

func (f optionFunc) apply(o *options) { f(o) }

// WithBalancer sets the balancer of the default engine (router.Service)
// for clusters whose mesh policy names none (default round robin).
func WithBalancer(b balancer.Builder) Option { return optionFunc(func(o *options) { o.balancer = b }) }

// WithBalancers sets where the default engine looks up balancers named by
// mesh policies (default balancer.Default).
func WithBalancers(r *balancer.Registry) Option {
	return optionFunc(func(o *options) { o.balancers = r })
}

// WithEngine sets the routing engine that every call and stream goes
// through (default router.Service built from WithBalancer, WithBalancers
// and WithStrategy; router-mesh's Istio engine for "router: mesh"). The
// reference feeds it every snapshot, owns it and closes it. The
// reference's timeout applies to unary calls whose route sets none.
func WithEngine(e router.Engine) Option { return optionFunc(func(o *options) { o.engine = e }) }

// WithRetireGrace sets how long the connection of an endpoint that left
// the cluster stays usable before it closes (once idle), so that a call
// that picked the endpoint just before it left still completes (default
// 2s; providers keep serving for their drain delay).
func WithRetireGrace(d time.Duration) Option { return optionFunc(func(o *options) { o.grace = d }) }

// WithWaitForReady makes calls to a cluster without a ready endpoint wait,
// within their context, for discovery to bring one, instead of failing at
// once with UNAVAILABLE (gRPC's wait-for-ready; Dubbo's check=false).
func WithWaitForReady() Option { return optionFunc(func(o *options) { o.waitReady = true }) }

// WithStrategy sets the cluster strategy of the default engine
// (router.Service; default cluster.Failover()).
func WithStrategy(s *cluster.Strategy) Option { return optionFunc(func(o *options) { o.strategy = s }) }

// WithTimeout sets the timeout of unary calls whose route sets none
// (default 3s, as Dubbo; 0 for none beyond the caller's context): a
// route's own timeout wins, longer or shorter, as in Istio. A unary call's
// timeout covers its retries; the reference sets it as call.Info.Deadline
// after the filters (which see a zero Deadline) and before the engine.
// Streams are bounded only by their route's timeout and their context.
func WithTimeout(d time.Duration) Option { return optionFunc(func(o *options) { o.timeout = d }) }

// WithFilters sets the client filter chain.
func WithFilters(c *filter.ClientChain) Option { return optionFunc(func(o *options) { o.filters = c }) }

// WithObserver reports the reference's endpoint counts (ready and total,
// after every discovery update; 0 and 0 once closed) to obs. The engine
// reports its own events: give it the same observer (app does, through
// router.EngineOptions).
func WithObserver(obs observer.Observer) Option { return optionFunc(func(o *options) { o.obs = obs }) }

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return optionFunc(func(o *options) { o.logger = l }) }

// DefaultTimeout is the per-call timeout unless WithTimeout says otherwise.
const DefaultTimeout = 3 * time.Second

// Reference is a client of one service (interface, group, version). It is
// safe for concurrent use.
type Reference struct {
	key       registry.Key
	opts      options
	transport Transport
	watcher   registry.Watcher
	log       *slog.Logger

	state   atomic.Pointer[state]
	ready   chan struct{}
	changed atomic.Pointer[chan struct{}] // closed and replaced on every state
	unary   filter.UnaryInvoker
	stream  filter.StreamInvoker
	invoke  router.Invoker      // r.invokeEndpoint, made once
	open    router.StreamOpener // r.openEndpoint, made once

	// Owned by the update loop.
	pool map[string]*conn

	retiringMu sync.Mutex
	retiring   map[*conn]*time.Timer

	done      chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once
}

// New starts watching key with d and returns the reference at once; calls
// made before the first discovery state wait for it, within their context.
func New(key registry.Key, d registry.Discovery, t Transport, opts ...Option) (*Reference, error) {
	o := options{balancers: balancer.Default, timeout: DefaultTimeout, logger: slog.Default(), grace: 2 * time.Second}
	for _, opt := range opts {
		opt.apply(&o)
	}
	var errs []error
	if err := key.Validate(); err != nil {
		errs = append(errs, err)
	}
	if d == nil {
		errs = append(errs, errors.New("consumer: no discovery; pass a registry, such as file.New(file.DefaultPath())"))
	}
	if t == nil {
		errs = append(errs, errors.New("consumer: no transport; pass the Triple transport"))
	}
	if o.timeout < 0 {
		errs = append(errs, fmt.Errorf("consumer: negative timeout %s; use 0 for none", o.timeout))
	}
	if o.grace < 0 {
		errs = append(errs, fmt.Errorf("consumer: negative retire grace %s; use 0 to close at once", o.grace))
	}
	if o.filters == nil {
		o.filters, _ = filter.NewClientChain()
	}
	o.obs = observer.OrNop(o.obs)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if o.engine == nil {
		o.engine = router.Service(router.EngineOptions{
			Service: key.Interface, Group: key.Group, Version: key.Version,
			Balancer: o.balancer, Balancers: o.balancers, Strategy: o.strategy, Logger: o.logger,
		})
	}
	w, err := d.Watch(context.Background(), key)
	if err != nil {
		return nil, fmt.Errorf("consumer %s: %w", key, err)
	}
	r := &Reference{
		key: key, opts: o, transport: t, watcher: w,
		log:      o.logger.With("reference", key.String()),
		ready:    make(chan struct{}),
		pool:     map[string]*conn{},
		retiring: map[*conn]*time.Timer{},
		done:     make(chan struct{}),
	}
	ch := make(chan struct{})
	r.changed.Store(&ch)
	r.unary = o.filters.Unary(r.routeUnary)
	r.stream = o.filters.Stream(r.routeStream)
	r.invoke = r.invokeEndpoint
	r.open = r.openEndpoint
	r.wg.Add(1)
	go r.loop()
	return r, nil
}

// Key returns the watched key.
func (r *Reference) Key() registry.Key { return r.key }

// Snapshot returns the discovery snapshot the reference routes by now,
// nil before the first one arrived. The snapshot is shared and immutable:
// read it, do not change what its slices hold.
func (r *Reference) Snapshot() *mesh.Snapshot {
	if s := r.state.Load(); s != nil {
		return s.snap
	}
	return nil
}

// Invoke makes a unary call of method and fills resp. The method is the
// IDL name ("Greet") or the full path ("/greet.GreetService/Greet", as
// generated clients pass it; the service part is the reference's).
// Attachments come from call.WithAttachments on ctx.
func (r *Reference) Invoke(ctx context.Context, method string, req, resp any) error {
	svc, full := r.names(method)
	info := &call.Info{Service: svc, Group: r.key.Group, Version: r.key.Version, Method: methodName(method), Attachments: call.AttachmentsFrom(ctx), FullMethod: full}
	return r.unary(ctx, info, req, resp)
}

// NewStream opens a stream (client, server or bidi) through the engine,
// which may open it again on another endpoint until the provider answers
// (see cluster.Strategy.NewStream). The method is written as for Invoke.
func (r *Reference) NewStream(ctx context.Context, method string) (filter.ClientStream, error) {
	svc, full := r.names(method)
	info := &call.Info{Service: svc, Group: r.key.Group, Version: r.key.Version, Method: methodName(method), Attachments: call.AttachmentsFrom(ctx), Streaming: true, FullMethod: full}
	return r.stream(ctx, info)
}

func methodName(m string) string {
	if i := strings.LastIndexByte(m, '/'); i >= 0 {
		return m[i+1:]
	}
	return m
}

// WaitReady blocks until the first discovery state arrived.
func (r *Reference) WaitReady(ctx context.Context) error {
	select {
	case <-r.ready:
		return nil
	case <-r.done:
		return errClosed
	case <-ctx.Done():
		return fmt.Errorf("consumer %s: no discovery state yet: %w", r.key, ctx.Err())
	}
}

// Close stops watching and closes every connection; calls in flight end
// with their connection's error.
func (r *Reference) Close() error {
	r.closeOnce.Do(func() { close(r.done) })
	err := r.watcher.Close()
	r.wg.Wait()
	r.opts.engine.Close()
	r.opts.obs.Endpoints(r.key.Interface, 0, 0)
	for _, c := range r.pool {
		c.retire()
	}
	r.retiringMu.Lock()
	for c, t := range r.retiring {
		t.Stop()
		c.retire()
		delete(r.retiring, c)
	}
	r.retiringMu.Unlock()
	return err
}

// leave retires c after the grace period.
func (r *Reference) leave(c *conn) {
	if r.opts.grace == 0 {
		c.retire()
		return
	}
	r.retiringMu.Lock()
	defer r.retiringMu.Unlock()
	r.retiring[c] = time.AfterFunc(r.opts.grace, func() {
		r.retiringMu.Lock()
		delete(r.retiring, c)
		r.retiringMu.Unlock()
		c.retire()
	})
}

var errClosed = call.Errorf(call.Unavailable, "consumer: reference closed")

// current returns the reference's state once the first discovery state
// has reached both the reference and its engine: ready closes only after
// the engine took the snapshot, so a call that sees a state but beat the
// engine's Update still waits here instead of failing.
func (r *Reference) current(ctx context.Context) (*state, error) {
	select {
	case <-r.ready:
		return r.state.Load(), nil
	default:
	}
	if err := r.WaitReady(ctx); err != nil {
		return nil, call.Errorf(call.Unavailable, "%v", err)
	}
	return r.state.Load(), nil
}

func (r *Reference) routeUnary(ctx context.Context, info *call.Info, req, resp any) error {
	if r.opts.timeout > 0 {
		info.Deadline = cluster.Deadline(ctx, r.opts.timeout)
	}
	for {
		changed := r.changed.Load()
		err := r.unaryOnce(ctx, info, req, resp)
		if !r.retryWhenReady(ctx, err, *changed) {
			return err
		}
	}
}

func (r *Reference) unaryOnce(ctx context.Context, info *call.Info, req, resp any) error {
	if _, err := r.current(ctx); err != nil {
		return err
	}
	return r.opts.engine.Invoke(ctx, info, req, resp, r.invoke)
}

func (r *Reference) routeStream(ctx context.Context, info *call.Info) (filter.ClientStream, error) {
	for {
		changed := r.changed.Load()
		st, err := r.streamOnce(ctx, info)
		if !r.retryWhenReady(ctx, err, *changed) {
			return st, err
		}
	}
}

func (r *Reference) streamOnce(ctx context.Context, info *call.Info) (filter.ClientStream, error) {
	if _, err := r.current(ctx); err != nil {
		return nil, err
	}
	return r.opts.engine.NewStream(ctx, info, r.open)
}

// retryWhenReady reports whether a call that failed with err goes again:
// under WithWaitForReady, a call that found no ready endpoint waits for
// the next discovery state (changed closes then) within its context.
func (r *Reference) retryWhenReady(ctx context.Context, err error, changed chan struct{}) bool {
	if err == nil || !r.opts.waitReady || !errors.Is(err, balancer.ErrNoReadyEndpoint) {
		return false
	}
	select {
	case <-changed:
		return true
	case <-r.done:
	case <-ctx.Done():
	}
	return false
}

func (r *Reference) invokeEndpoint(ctx context.Context, ep *mesh.Endpoint, info *call.Info, req, resp any) error {
	c := r.state.Load().conn(ep)
	if c == nil { // the endpoint left before the call reached it: retryable
		return &call.Error{Code: call.Unavailable, Connect: true, Message: "consumer: " + ep.Address + " is not in the current discovery state"}
	}
	return c.invoke(ctx, info, req, resp)
}

func (r *Reference) openEndpoint(ctx context.Context, ep *mesh.Endpoint, info *call.Info) (filter.ClientStream, error) {
	c := r.state.Load().conn(ep)
	if c == nil {
		return nil, &call.Error{Code: call.Unavailable, Connect: true, Message: "consumer: " + ep.Address + " is not in the current discovery state"}
	}
	return c.newStream(ctx, info)
}

// fullMethod returns method when it is this reference's own
// "/Interface/Method" path, so routing need not build it again; "" otherwise.
// names returns the service a call names on the wire and its full path
// when the caller gave one ("/Service/Method", as generated clients do).
// A reference to an interface calls that interface. A reference to a
// target (a URI such as xds:///host:port, which names where to go, not
// what to call) takes the service from the path.
func (r *Reference) names(method string) (service, fullMethod string) {
	if len(method) > 2 && method[0] == '/' {
		if svc, _, ok := strings.Cut(method[1:], "/"); ok && svc != "" {
			if svc == r.key.Interface || strings.Contains(r.key.Interface, "://") {
				return svc, method
			}
		}
	}
	return r.key.Interface, ""
}
