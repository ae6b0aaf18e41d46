package routermesh

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shoalmesh/shoal/sdk/balancer"
	"github.com/shoalmesh/shoal/sdk/call"
	"github.com/shoalmesh/shoal/sdk/cluster"
	"github.com/shoalmesh/shoal/sdk/filter"
	"github.com/shoalmesh/shoal/sdk/mesh"
	"github.com/shoalmesh/shoal/sdk/observer"
	"github.com/shoalmesh/shoal/sdk/router"
)

// Invoker makes one attempt of a unary call on one endpoint. The consumer
// supplies it: it sends the call over its connection to ep, and ends it at
// info.Deadline. info carries the call's attachments after the route's
// header operations. It is the sdk's router.Invoker, so that *Router is an
// sdk router.Engine.
type Invoker = router.Invoker

// StreamOpener opens one attempt of a stream on one endpoint; the
// consumer supplies it.
type StreamOpener = router.StreamOpener

var _ router.Engine = (*Router)(nil)

// EngineName is the name the mesh engine registers under ("router: mesh").
const EngineName = "mesh"

// Builder returns an sdk router.EngineBuilder that makes a Router with opts
// for each consumer.
func Builder(opts ...Option) router.EngineBuilder { return builder{opts: opts} }

type builder struct{ opts []Option }

func (builder) Name() string { return EngineName }

func (b builder) Build() router.Engine { return New(b.opts...) }

// BuildFor builds as Build does, reporting to the consumer's observer
// (opts.Observer) unless the builder's own options set one.
func (b builder) BuildFor(opts router.EngineOptions) router.Engine {
	if opts.Observer == nil {
		return b.Build()
	}
	return New(append([]Option{WithObserver(opts.Observer)}, b.opts...)...)
}

// Router executes mesh routing for the calls of one consumer. Create it with
// New, feed it snapshots with Update, and send calls through Invoke.
// All methods are safe for concurrent use; Update never blocks Invoke.
type Router struct {
	cfg   config
	rng   *rng
	state atomic.Pointer[state]

	mu     sync.Mutex // serializes Update and Close
	closed bool

	// mirrMu orders starting a mirror against Close: a mirror joins the
	// WaitGroup only while the router is open, so Close's Wait never runs
	// beside an Add.
	mirrMu     sync.Mutex
	mirrClosed bool
	mirrors    sync.WaitGroup
	inMirror   atomic.Int64
	stopMirr   context.CancelFunc
	mirrCtx    context.Context
}

// state is one snapshot with its per-destination cluster states.
type state struct {
	snap     *mesh.Snapshot
	clusters map[mesh.Destination]*clusterState
	routes   []routeTargets      // parallel to snap.Routes()
	retries  []*cluster.Strategy // parallel to snap.Routes(): each route's retry policy
}

// routeTargets are one route's weighted destinations, resolved once per
// snapshot so that a call picks one without a map lookup.
type routeTargets struct {
	total   uint64 // sum of the weights
	targets []target
}

// target is where a call goes: a destination, the header operations of the
// route's weighted destination, and the destination's cluster state.
type target struct {
	dest    mesh.Destination
	headers *mesh.HeaderOps // nil for the default route
	cs      *clusterState   // nil when the snapshot lacks the destination
	upTo    uint64          // cumulative weight through this destination
}

// clusterState is the runtime of one destination: its balancer, outlier
// detector and circuit-breaker counters.
//
// It is the cluster.Target of the sdk's retry loop: Pick returns ejected
// endpoints to the balancer once their time is up, TryDone feeds outlier
// detection, TakeRetry and ReleaseRetry hold the retry budget.
type clusterState struct {
	cfg     *config
	dest    mesh.Destination
	name    string // dest.String(), for the observer
	cluster *mesh.Cluster
	lbKey   string
	handle  *balancer.Handle
	outlier *outlierDetector
	pool    mesh.ConnectionPool
	load    *poolLoad
	mu      sync.Mutex // serializes picker rebuilds after ejections
}

// poolLoad counts what the circuit breakers limit. It is shared across
// snapshot updates for the same destination, as the outlier detector is: a
// call in flight during an update ends on the counters of the new state.
type poolLoad struct {
	active   atomic.Int64 // calls in flight (http2MaxRequests)
	retrying atomic.Int64 // retries in flight (maxRetries)
}

// New returns a router with no state: calls fail with UNAVAILABLE until the
// first Update.
func New(opts ...Option) *Router {
	cfg := newConfig(opts)
	r := &Router{cfg: cfg, rng: newRNG(cfg.seed, cfg.seeded)}
	r.mirrCtx, r.stopMirr = context.WithCancel(context.Background())
	return r
}

// Update installs a new snapshot. Balancer state, outlier counters and
// ejections carry over for destinations that stay. On error the previous
// state stays in use.
func (r *Router) Update(snap *mesh.Snapshot) error {
	if snap == nil {
		return errors.New("routermesh: Update with a nil snapshot")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return errors.New("routermesh: Update on a closed router")
	}
	prev := r.state.Load()
	next := &state{snap: snap, clusters: map[mesh.Destination]*clusterState{}}
	var errs []error
	add := func(d mesh.Destination) {
		if _, done := next.clusters[d]; done {
			return
		}
		c, ok := snap.Cluster(d)
		if !ok {
			return // reported per call: the route names a destination the snapshot lacks
		}
		var old *clusterState
		if prev != nil {
			old = prev.clusters[d]
		}
		cs, err := r.buildCluster(d, c, old)
		if err != nil {
			errs = append(errs, err)
			return
		}
		next.clusters[d] = cs
	}
	for _, s := range snap.Services() {
		add(mesh.Destination{Service: s.Name})
		for _, sub := range s.Subsets {
			add(mesh.Destination{Service: s.Name, Subset: sub.Name})
		}
	}
	for _, rt := range snap.Routes() {
		for _, d := range rt.Destinations {
			add(d.Destination)
		}
		for _, m := range rt.Policy.Mirrors {
			add(m.Destination)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("routermesh: snapshot %s rejected, the previous one stays in use: %w", snap.Revision(), err)
	}
	routes := snap.Routes()
	next.routes = make([]routeTargets, len(routes))
	next.retries = make([]*cluster.Strategy, len(routes))
	for i := range routes {
		next.retries[i] = cluster.FromRetryPolicy(routes[i].Policy.Retry, cluster.WithRand(r.rng.below))
		rt := &next.routes[i]
		rt.targets = make([]target, len(routes[i].Destinations))
		for j := range routes[i].Destinations {
			d := &routes[i].Destinations[j]
			rt.total += uint64(d.Weight)
			rt.targets[j] = target{dest: d.Destination, headers: &d.RequestHeaders, cs: next.clusters[d.Destination], upTo: rt.total}
		}
	}
	r.state.Store(next)
	return nil
}

func (r *Router) buildCluster(d mesh.Destination, c *mesh.Cluster, old *clusterState) (*clusterState, error) {
	p := c.Policy()
	lb := p.LoadBalancer
	kind := mesh.LBDefault
	if lb != nil {
		kind = lb.Kind
	}
	key := fmt.Sprintf("%v", lb)
	if lb != nil && lb.ConsistentHash != nil {
		key = fmt.Sprintf("%v/%+v", lb.Kind, *lb.ConsistentHash)
	}
	cs := &clusterState{cfg: &r.cfg, dest: d, name: d.String(), cluster: c, lbKey: key}
	if p.ConnectionPool != nil {
		cs.pool = *p.ConnectionPool
	}
	if old != nil && old.lbKey == key {
		cs.handle = old.handle // keep the balancer's own state (in-flight counts, rotation)
	} else {
		b, err := r.cfg.balancers.ForKind(kind)
		if err != nil && kind == mesh.LBMaglev {
			// No Maglev balancer registered: consistent hashing on the same
			// key with a ring hash (each key still sticks to one endpoint;
			// the placement differs from Envoy's Maglev table).
			b, err = r.cfg.balancers.ForKind(mesh.LBRingHash)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: load balancer %v: %w", d, kind, err)
		}
		cs.handle = balancer.NewHandle(b, balancer.BuildOptions{Target: d.String(), LoadBalancer: lb})
	}
	od := p.OutlierDetection
	if od == nil {
		od = r.cfg.outlier
	}
	if od != nil {
		if old != nil && old.outlier != nil {
			cs.outlier = old.outlier
			cs.outlier.setPolicy(*od)
		} else {
			cs.outlier = newOutlierDetector(*od)
		}
	}
	if old != nil {
		cs.load = old.load // calls in flight count against the new limits
	} else {
		cs.load = &poolLoad{}
	}
	if err := cs.refresh(r.cfg.now()); err != nil {
		return nil, fmt.Errorf("%s: %w", d, err)
	}
	return cs, nil
}

// refresh hands the balancer the cluster's usable endpoints: ready, and not
// ejected by outlier detection.
func (cs *clusterState) refresh(now time.Time) error {
	eps := cs.cluster.Ready()
	if cs.outlier != nil {
		eps = cs.outlier.filter(eps, now)
	}
	return cs.handle.Update(balancer.State{Endpoints: eps})
}

// Snapshot returns the snapshot in use, or nil before the first Update.
func (r *Router) Snapshot() *mesh.Snapshot {
	if st := r.state.Load(); st != nil {
		return st.snap
	}
	return nil
}

// Ejected reports whether outlier detection has ejected addr from dest now.
func (r *Router) Ejected(dest mesh.Destination, addr string) bool {
	st := r.state.Load()
	if st == nil {
		return false
	}
	cs := st.clusters[dest]
	return cs != nil && cs.outlier != nil && cs.outlier.isEjected(addr, r.cfg.now())
}

// Close stops mirrored calls in flight and waits for them. Invoke keeps
// working on the last state but starts no mirror; Update fails.
func (r *Router) Close() {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	r.mirrMu.Lock()
	r.mirrClosed = true
	r.mirrMu.Unlock()
	r.stopMirr()
	r.mirrors.Wait()
}

// Invoke routes one unary call: it matches a route, injects the route's
// faults, starts its mirrors, applies its header operations and timeout
// (which replaces info.Deadline, the reference's timeout, as Istio's route
// timeout does), picks a weighted destination and then endpoints with the
// destination's balancer, retrying as the route's retry policy allows,
// under the destination's circuit breaker and outlier detection.
func (r *Router) Invoke(ctx context.Context, info *call.Info, req, resp any, invoke Invoker) error {
	st := r.state.Load()
	if st == nil {
		return noState(info)
	}
	to, i, err := r.route(st, info)
	if err != nil {
		return err
	}
	strategy := cluster.Failfast()
	if i >= 0 {
		policy := &st.snap.Routes()[i].Policy
		if f := policy.Fault; f != nil {
			if err := r.injectFault(ctx, f, info.Service); err != nil {
				return err
			}
		}
		for j := range policy.Mirrors {
			r.mirror(st, &policy.Mirrors[j], info, req, resp, invoke)
		}
		info = withHeaders(info, &policy.RequestHeaders, to.headers)
		if policy.Timeout > 0 {
			info.Deadline = cluster.Deadline(ctx, policy.Timeout)
		}
		strategy = st.retries[i]
	}
	cs, err := r.admit(st, to, i, info)
	if err != nil {
		return err
	}
	defer cs.load.active.Add(-1)
	return strategy.Invoke(ctx, info, cs, req, resp, invoke)
}

// NewStream opens a stream under the same rules, applied at open, as
// Envoy and grpc-go apply them: the route matches on the method and
// headers, a weighted destination and an endpoint are picked per stream,
// faults delay or abort the open, the route's timeout bounds the whole
// stream (max_stream_duration), the stream holds a place under the
// destination's http2MaxRequests until it ends, and outlier detection
// sees its final status. The route's retry policy retries it while the
// provider has not answered (cluster.Strategy.NewStream). Streams are not
// mirrored.
func (r *Router) NewStream(ctx context.Context, info *call.Info, open StreamOpener) (filter.ClientStream, error) {
	st := r.state.Load()
	if st == nil {
		return nil, noState(info)
	}
	to, i, err := r.route(st, info)
	if err != nil {
		return nil, err
	}
	strategy := cluster.Failfast()
	var cancel context.CancelFunc
	if i >= 0 {
		policy := &st.snap.Routes()[i].Policy
		if f := policy.Fault; f != nil {
			if err := r.injectFault(ctx, f, info.Service); err != nil {
				return nil, err
			}
		}
		info = withHeaders(info, &policy.RequestHeaders, to.headers)
		if policy.Timeout > 0 {
			ctx, cancel = context.WithTimeout(ctx, policy.Timeout)
		}
		strategy = st.retries[i]
	}
	cs, err := r.admit(st, to, i, info)
	if err != nil {
		if cancel != nil {
			cancel()
		}
		return nil, err
	}
	return strategy.NewStream(ctx, info, cs, open, func(error) {
		cs.load.active.Add(-1)
		if cancel != nil {
			cancel()
		}
	})
}

// admit finds the destination's cluster state and takes a place under its
// circuit breaker (connectionPool.http.http2MaxRequests); the caller gives
// it back when the call or stream ends.
func (r *Router) admit(st *state, to target, i int, info *call.Info) (*clusterState, error) {
	cs := to.cs
	if cs == nil {
		name := "(default)"
		if i >= 0 {
			name = st.snap.Routes()[i].Name
		}
		return nil, call.Errorf(call.Unavailable, "routermesh: route %q sends %s to %s, which has no endpoints in snapshot %s; check the DestinationRule subsets",
			name, info.Service, to.dest, st.snap.Revision())
	}
	n := cs.load.active.Add(1)
	if limit := cs.pool.MaxRequests; limit > 0 && n > int64(limit) {
		cs.load.active.Add(-1)
		r.cfg.obs.Overflow(cs.name, observer.MaxRequests)
		return nil, call.Errorf(call.Unavailable,
			"routermesh: circuit breaker open for %s: %d requests in flight, the DestinationRule allows %d (connectionPool.http.http2MaxRequests)",
			cs.dest, n-1, limit)
	}
	return cs, nil
}

func noState(info *call.Info) error {
	return call.Errorf(call.Unavailable, "routermesh: no routing state for %s yet; the discovery has not delivered a snapshot", info.Service)
}

// route finds the call's route in st (its index, -1 for the default route
// of a snapshot without routes) and picks one of its weighted
// destinations.
func (r *Router) route(st *state, info *call.Info) (target, int, error) {
	i := st.snap.MatchIndex(info.Path(), info.Attachments, r.cfg.source)
	if i < 0 {
		if len(st.routes) == 0 {
			d := mesh.Destination{Service: info.Service}
			return target{dest: d, cs: st.clusters[d]}, -1, nil
		}
		return target{}, -1, call.Errorf(call.Unimplemented,
			"routermesh: no route matches %s in snapshot %s (as Envoy's 404 NR); add a catch-all route to the VirtualService", info.Path(), st.snap.Revision())
	}
	ts := &st.routes[i]
	switch len(ts.targets) {
	case 0:
		return target{}, -1, call.Errorf(call.Unavailable, "routermesh: route %q has no destination", st.snap.Routes()[i].Name)
	case 1:
		return ts.targets[0], i, nil
	}
	if ts.total == 0 {
		return ts.targets[r.rng.below(uint64(len(ts.targets)))], i, nil
	}
	n := r.rng.below(ts.total)
	for j := range ts.targets {
		if n < ts.targets[j].upTo {
			return ts.targets[j], i, nil
		}
	}
	return ts.targets[len(ts.targets)-1], i, nil
}

func (r *Router) injectFault(ctx context.Context, f *mesh.FaultPolicy, service string) error {
	if d := f.Delay; d != nil && d.Fixed > 0 && r.rng.chance(d.Percentage) {
		r.cfg.obs.Fault(service, observer.Delay)
		if !r.cfg.sleep(ctx.Done(), d.Fixed) {
			return call.Errorf(call.CodeOf(ctx.Err()), "routermesh: call ended during an injected delay: %v", ctx.Err())
		}
	}
	if a := f.Abort; a != nil && r.rng.chance(a.Percentage) {
		r.cfg.obs.Fault(service, observer.Abort)
		code := a.Code
		if code == call.OK && a.HTTPStatus != 0 {
			code = call.CodeForHTTPStatus(a.HTTPStatus)
		}
		return &call.Error{Code: code, Message: "fault filter abort"}
	}
	return nil
}

// withHeaders applies the route's and the destination's header operations to
// a copy of the call's attachments.
func withHeaders(info *call.Info, routeOps, destOps *mesh.HeaderOps) *call.Info {
	if routeOps.IsZero() && destOps.IsZero() {
		return info
	}
	c := *info
	c.Attachments = info.Attachments.Clone()
	c.Attachments = routeOps.Apply(c.Attachments)
	c.Attachments = destOps.Apply(c.Attachments)
	return &c
}

// mirror sends a fire-and-forget copy of the call, bounded in number. The
// copy has its own request and response messages: the caller may reuse
// its request once its call returns, and the mirror's answer is dropped.
func (r *Router) mirror(st *state, m *mesh.Mirror, info *call.Info, req, resp any, invoke Invoker) {
	if !r.rng.chance(m.Percentage) {
		return
	}
	cs := st.clusters[m.Destination]
	if cs == nil {
		return // the destination has no endpoints in this snapshot
	}
	if r.inMirror.Add(1) > int64(r.cfg.maxMirrors) {
		r.inMirror.Add(-1) // give back only the place this call took
		return
	}
	r.mirrMu.Lock()
	if r.mirrClosed {
		r.mirrMu.Unlock()
		r.inMirror.Add(-1)
		return
	}
	mreq, mresp, ok := cluster.CopyForMirror(req, resp)
	if !ok {
		r.mirrMu.Unlock()
		r.inMirror.Add(-1)
		r.cfg.logger.Debug("routermesh: call not mirrored: its messages cannot be copied", "request", fmt.Sprintf("%T", req))
		return
	}
	r.mirrors.Add(1)
	r.mirrMu.Unlock()
	c := *info
	c.Attachments = info.Attachments.Clone()
	go func() {
		defer r.mirrors.Done()
		defer r.inMirror.Add(-1)
		ctx, cancel := context.WithTimeout(r.mirrCtx, 30*time.Second)
		defer cancel()
		cs, err := r.admit(st, target{dest: m.Destination, cs: cs}, -1, &c)
		if err != nil {
			return
		}
		defer cs.load.active.Add(-1)
		_ = cluster.Failfast().Invoke(ctx, &c, cs, mreq, mresp, invoke)
	}()
}

// Pick picks an endpoint for a try, first returning to the balancer the
// endpoints whose ejection ended.
func (cs *clusterState) Pick(info balancer.PickInfo) (balancer.PickResult, error) {
	if cs.outlier != nil {
		if now := cs.cfg.now(); cs.outlier.expired(now) {
			cs.rebuild(now)
		}
	}
	return cs.handle.Pick(info)
}

// TryDone feeds outlier detection with how a try or a stream ended.
func (cs *clusterState) TryDone(ep *mesh.Endpoint, err error) {
	if cs.outlier == nil {
		return
	}
	if now := cs.cfg.now(); cs.outlier.report(ep.Address, err, len(cs.cluster.Ready()), now) {
		cs.rebuild(now)
		cs.cfg.obs.Ejected(cs.name, ep.Address)
		cs.cfg.logger.Info("routermesh: outlier detection ejected an endpoint",
			"destination", cs.dest.String(), "endpoint", ep.Address, "error", err)
	}
}

// TakeRetry takes a place in the destination's retry budget
// (connectionPool.http.maxRetries), from a retry's backoff to the end of
// its try, as Envoy's max_retries counts it.
func (cs *clusterState) TakeRetry() bool {
	if n := cs.load.retrying.Add(1); cs.pool.MaxRetries > 0 && n > int64(cs.pool.MaxRetries) {
		cs.load.retrying.Add(-1)
		cs.cfg.obs.Overflow(cs.name, observer.MaxRetries)
		return false
	}
	cs.cfg.obs.Retry(cs.name)
	return true
}

// ReleaseRetry gives the place back.
func (cs *clusterState) ReleaseRetry() { cs.load.retrying.Add(-1) }

func (cs *clusterState) rebuild(now time.Time) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	_ = cs.refresh(now) // an error leaves the previous picker, which is still valid
}
