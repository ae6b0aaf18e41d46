package router

import (
	"github.com/shoalmesh/shoal/sdk/call"
	"github.com/shoalmesh/shoal/sdk/internal/plugin"
	"github.com/shoalmesh/shoal/sdk/mesh"
)

// Router selects the destination of a call. Implementations must be safe
// for concurrent use and must not block: Route runs on every call.
type Router interface {
	// Name identifies the router in configuration, e.g. "service" or "mesh".
	Name() string
	// Route returns the decision for a call against a snapshot. An error
	// fails the call; use call.Error codes (UNAVAILABLE when there is no
	// cluster to send to).
	Route(info *call.Info, snap *mesh.Snapshot) (Decision, error)
}

// Decision is where a call goes and under which policy.
type Decision struct {
	// Cluster is the destination; never nil when Route succeeds.
	Cluster *mesh.Cluster
	// Route is the route that matched, or nil when none did (or the router
	// ignores routes); its Policy applies to the call.
	Route *mesh.Route
	// Attachments, if not nil, replace the call's attachments (header edits).
	Attachments call.Attachments
}

// Policy returns the route policy of the decision, or nil.
func (d *Decision) Policy() *mesh.RoutePolicy {
	if d.Route == nil {
		return nil
	}
	return &d.Route.Policy
}

// ServiceName is the registry name of the trivial router.
const ServiceName = "service"

// Service returns the trivial router: every call goes to the cluster of the
// called service (info.Service), all subsets together; routes are ignored.
func Service() Router { return serviceRouter{} }

type serviceRouter struct{}

func (serviceRouter) Name() string { return ServiceName }

func (serviceRouter) Route(info *call.Info, snap *mesh.Snapshot) (Decision, error) {
	c, ok := snap.Cluster(mesh.Destination{Service: info.Service})
	if !ok {
		return Decision{}, call.Errorf(call.Unavailable, "router: no cluster for %s in snapshot %q; check that the discovery knows the service", info.Service, snap.Revision())
	}
	return Decision{Cluster: c}, nil
}

// Registry holds routers by name. The zero value is not ready; use
// NewRegistry.
type Registry struct{ set plugin.Set[Router] }

// NewRegistry returns a registry holding the given routers.
func NewRegistry(routers ...Router) *Registry {
	r := &Registry{}
	r.set.Kind = "router"
	for _, x := range routers {
		r.Register(x)
	}
	return r
}

// Register adds or replaces a router by name; it panics on an empty name.
func (r *Registry) Register(x Router) {
	if err := r.set.Register(x); err != nil {
		panic(err)
	}
}

// Get returns the router registered under name.
func (r *Registry) Get(name string) (Router, error) { return r.set.Get(name) }

// Names lists the registered routers.
func (r *Registry) Names() []string { return r.set.Names() }

// Default holds the built-in router; router-mesh adds "mesh" to it or to an
// application's own registry.
var Default = NewRegistry(Service())
