package balancer

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/shoalmesh/shoal/sdk/call"
	"github.com/shoalmesh/shoal/sdk/internal/plugin"
	"github.com/shoalmesh/shoal/sdk/mesh"
)

// Builder makes balancers of one kind. It is registered under Name.
type Builder interface {
	// Name is the registry key, e.g. "round_robin".
	Name() string
	// Build makes a balancer for one cluster.
	Build(opts BuildOptions) Balancer
}

// BuildOptions describe the cluster a balancer serves.
type BuildOptions struct {
	// Target names the cluster in errors and logs, e.g. "greet.GreetService|v1".
	Target string
	// LoadBalancer is the cluster's policy from the mesh, if any. Balancers
	// read their settings from it (ring hash: the key and the ring size),
	// and these win over the builder's options.
	LoadBalancer *mesh.LoadBalancer
}

// Balancer turns cluster states into pickers. UpdateState calls are
// serialized by the caller (a Handle); a Balancer may keep state between
// them, such as in-flight counters.
type Balancer interface {
	// UpdateState returns a picker for the new state. The endpoints are the
	// ready ones, in a stable order; an empty list is valid (every pick then
	// fails with UNAVAILABLE).
	UpdateState(s State) (Picker, error)
}

// State is what a balancer balances over.
type State struct {
	// Endpoints are the ready endpoints of the cluster. Shared: do not modify.
	Endpoints []*mesh.Endpoint
}

// Picker chooses an endpoint for one call. It is immutable and safe for
// concurrent use; Pick must not block.
type Picker interface {
	Pick(info PickInfo) (PickResult, error)
}

// PickInfo is what a picker may look at.
type PickInfo struct {
	Ctx  context.Context
	Call *call.Info
	// Tried are endpoints already tried by this call (failover); pickers
	// avoid them while others remain.
	Tried []*mesh.Endpoint
}

// PickResult is a chosen endpoint.
type PickResult struct {
	Endpoint *mesh.Endpoint
	// Done, when not nil, must be called once when the call ends.
	Done func(DoneInfo)
}

// DoneInfo reports how a call went.
type DoneInfo struct {
	Err error
}

// Handle owns one Balancer and its current picker. Pick is lock-free: it
// loads the picker with one atomic read. Update rebuilds the picker and
// swaps it in; concurrent Updates are serialized.
type Handle struct {
	target string
	mu     sync.Mutex // serializes UpdateState
	b      Balancer
	cur    atomic.Pointer[pickerBox]
}

type pickerBox struct{ p Picker }

// NewHandle builds a balancer with b. Until the first Update, picks fail
// with UNAVAILABLE.
func NewHandle(b Builder, opts BuildOptions) *Handle {
	h := &Handle{target: opts.Target, b: b.Build(opts)}
	h.cur.Store(&pickerBox{p: errPicker{err: noEndpoints(opts.Target, "no state has arrived yet")}})
	return h
}

// Update hands a new state to the balancer and installs its picker. On
// error the previous picker stays in use.
func (h *Handle) Update(s State) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	p, err := h.b.UpdateState(s)
	if err != nil {
		return err
	}
	h.cur.Store(&pickerBox{p: p})
	return nil
}

// Pick chooses an endpoint with the current picker.
func (h *Handle) Pick(info PickInfo) (PickResult, error) {
	return h.cur.Load().p.Pick(info)
}

type errPicker struct{ err error }

func (p errPicker) Pick(PickInfo) (PickResult, error) { return PickResult{}, p.err }

// ErrNoReadyEndpoint matches (errors.Is) the error of a pick from a
// cluster with no ready endpoint; its status code is UNAVAILABLE.
var ErrNoReadyEndpoint = errors.New("no ready endpoint")

type noReadyError struct{ target, why string }

func (e *noReadyError) Error() string {
	return fmt.Sprintf("unavailable: no ready endpoint for %s: %s; check that a provider is running and registered", e.target, e.why)
}

func (e *noReadyError) StatusCode() call.Code { return call.Unavailable }

func (e *noReadyError) Is(target error) bool { return target == ErrNoReadyEndpoint }

func noEndpoints(target, why string) error { return &noReadyError{target: target, why: why} }

func tried(e *mesh.Endpoint, list []*mesh.Endpoint) bool {
	for _, t := range list {
		if t == e {
			return true
		}
	}
	return false
}

// Registry is a set of balancer builders by name, for one application or
// consumer. The zero value is not ready; use NewRegistry.
type Registry struct{ set plugin.Set[Builder] }

// NewRegistry returns a registry holding the given builders.
func NewRegistry(builders ...Builder) *Registry {
	r := &Registry{}
	r.set.Kind = "balancer"
	for _, b := range builders {
		r.Register(b)
	}
	return r
}

// Register adds b, replacing any builder of the same name. It panics on an
// empty name, a programming error.
func (r *Registry) Register(b Builder) {
	if err := r.set.Register(b); err != nil {
		panic(err)
	}
}

// Get returns the builder registered under name.
func (r *Registry) Get(name string) (Builder, error) { return r.set.Get(name) }

// Names lists the registered builders.
func (r *Registry) Names() []string { return r.set.Names() }

// ForKind returns the builder for a mesh load-balancer kind; LBDefault
// maps to round robin.
func (r *Registry) ForKind(k mesh.LBKind) (Builder, error) {
	if k == mesh.LBDefault {
		k = mesh.LBRoundRobin
	}
	return r.Get(k.String())
}

// Default holds the built-in balancers. Register adds to it.
var Default = NewRegistry(RoundRobin(), Random(), LeastRequest(), RingHash())

// Register adds b to Default.
func Register(b Builder) { Default.Register(b) }
