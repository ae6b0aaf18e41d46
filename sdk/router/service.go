package router

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/shoalmesh/shoal/sdk/balancer"
	"github.com/shoalmesh/shoal/sdk/call"
	"github.com/shoalmesh/shoal/sdk/cluster"
	"github.com/shoalmesh/shoal/sdk/filter"
	"github.com/shoalmesh/shoal/sdk/mesh"
)

// ServiceName is the registry name of the trivial engine.
const ServiceName = "service"

// ServiceBuilder builds the trivial engine, [Service], for each consumer.
func ServiceBuilder() EngineBuilder { return serviceBuilder{} }

type serviceBuilder struct{}

func (serviceBuilder) Name() string                    { return ServiceName }
func (serviceBuilder) Build() Engine                   { return Service(EngineOptions{}) }
func (serviceBuilder) BuildFor(o EngineOptions) Engine { return Service(o) }

// Service returns the trivial engine: every call, unary or stream, goes to
// the cluster of the called service (info.Service), all its subsets
// together; routes are ignored. The cluster's mesh load-balancer policy
// picks the balancer (o.Balancer when it names none) and o.Strategy
// retries (cluster.Failover() when nil).
func Service(o EngineOptions) Engine {
	if o.Balancer == nil {
		o.Balancer = balancer.RoundRobin()
	}
	if o.Balancers == nil {
		o.Balancers = balancer.Default
	}
	if o.Strategy == nil {
		o.Strategy = cluster.Failover()
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &serviceEngine{opts: o, clusters: map[string]*serviceCluster{}}
}

type serviceEngine struct {
	opts  EngineOptions
	state atomic.Pointer[serviceState]

	mu       sync.Mutex // serializes Update
	clusters map[string]*serviceCluster
}

type serviceState struct {
	revision string
	clusters map[string]*serviceCluster // by service name
}

type serviceCluster struct {
	builder string
	handle  *balancer.Handle
}

// Update builds a balancer per service (kept across snapshots while its
// balancer kind stays) and hands it the service's ready endpoints.
func (e *serviceEngine) Update(snap *mesh.Snapshot) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	next := &serviceState{revision: snap.Revision(), clusters: make(map[string]*serviceCluster, len(snap.Services()))}
	for _, c := range snap.Clusters() {
		dest := c.Destination()
		if dest.Subset != "" {
			continue
		}
		b, err := e.builderFor(c)
		if err != nil {
			e.opts.Logger.Error("router: cluster skipped", "cluster", dest.String(), "error", err)
			continue
		}
		sc := e.clusters[dest.Service]
		if sc == nil || sc.builder != b.Name() {
			sc = &serviceCluster{builder: b.Name(), handle: balancer.NewHandle(b, balancer.BuildOptions{Target: dest.String(), LoadBalancer: c.Policy().LoadBalancer})}
		}
		if err := sc.handle.Update(balancer.State{Endpoints: c.Ready()}); err != nil {
			e.opts.Logger.Error("router: balancer rejected the update; the previous endpoints stay in use", "cluster", dest.String(), "error", err)
		}
		next.clusters[dest.Service] = sc
	}
	e.clusters = next.clusters
	e.state.Store(next)
	return nil
}

func (e *serviceEngine) builderFor(c *mesh.Cluster) (balancer.Builder, error) {
	lb := c.Policy().LoadBalancer
	if lb == nil || lb.Kind == mesh.LBDefault {
		return e.opts.Balancer, nil
	}
	return e.opts.Balancers.ForKind(lb.Kind)
}

func (e *serviceEngine) target(info *call.Info) (*balancer.Handle, error) {
	st := e.state.Load()
	if st == nil {
		return nil, call.Errorf(call.Unavailable, "router: no discovery state for %s yet", info.Service)
	}
	sc := st.clusters[info.Service]
	if sc == nil {
		return nil, call.Errorf(call.Unavailable, "router: no cluster for %s in snapshot %q; check that the discovery knows the service (an xds:/// target needs router: mesh)", info.Service, st.revision)
	}
	return sc.handle, nil
}

func (e *serviceEngine) Invoke(ctx context.Context, info *call.Info, req, resp any, invoke Invoker) error {
	h, err := e.target(info)
	if err != nil {
		return err
	}
	return e.opts.Strategy.Invoke(ctx, info, h, req, resp, invoke)
}

func (e *serviceEngine) NewStream(ctx context.Context, info *call.Info, open StreamOpener) (filter.ClientStream, error) {
	h, err := e.target(info)
	if err != nil {
		return nil, err
	}
	return e.opts.Strategy.NewStream(ctx, info, h, open, nil)
}

func (*serviceEngine) Close() {}
