package router

import (
	"context"
	"log/slog"

	"github.com/shoalmesh/shoal/sdk/balancer"
	"github.com/shoalmesh/shoal/sdk/call"
	"github.com/shoalmesh/shoal/sdk/cluster"
	"github.com/shoalmesh/shoal/sdk/filter"
	"github.com/shoalmesh/shoal/sdk/internal/plugin"
	"github.com/shoalmesh/shoal/sdk/mesh"
	"github.com/shoalmesh/shoal/sdk/observer"
)

// Invoker sends one try of a unary call to one endpoint; the consumer
// supplies it, over its connection to ep. info is the call as the engine
// edited it (header operations applied, Deadline set). It ends the try at
// info.Deadline.
type Invoker = cluster.Invoker

// StreamOpener opens one attempt of a stream on one endpoint; the consumer
// supplies it.
type StreamOpener = cluster.StreamOpener

// Engine runs every call of a consumer against mesh snapshots: route
// matching, weighted destinations, faults, mirrors, timeouts, retries,
// balancing and outlier detection, as far as the engine implements them.
// A consumer feeds it every snapshot with Update, sends every unary call
// through Invoke and opens every stream through NewStream; it owns the
// engine and closes it.
//
// Timeouts follow one rule (Istio's): the consumer puts its reference's
// timeout in info.Deadline; an engine whose route sets a timeout replaces
// it with the route's, longer or shorter (cluster.Deadline), and bounds a
// stream's whole life by it. The caller's own ctx deadline always holds.
type Engine interface {
	// Update installs a snapshot; on error the previous one stays in use.
	// It must not block calls.
	Update(snap *mesh.Snapshot) error
	// Invoke runs one unary call, calling invoke once per try.
	Invoke(ctx context.Context, info *call.Info, req, resp any, invoke Invoker) error
	// NewStream opens a stream (client, server or bidi), calling open once
	// per attempt; the stream may be retried until the provider answers
	// (see cluster.Strategy.NewStream).
	NewStream(ctx context.Context, info *call.Info, open StreamOpener) (filter.ClientStream, error)
	// Close stops background work (mirrors) and releases the engine.
	Close()
}

// EngineBuilder makes an engine per consumer, registered by name so that
// configuration can say "router: mesh". A builder that also implements
// EngineBuilderFor is given the consumer's EngineOptions.
type EngineBuilder interface {
	Name() string
	Build() Engine
}

// EngineBuilderFor is the optional richer form of EngineBuilder: the
// consumer's reference and the workload's labels (routes' sourceLabels)
// come with the call.
type EngineBuilderFor interface {
	BuildFor(opts EngineOptions) Engine
}

// BuildEngine builds with BuildFor when b implements it, else with Build.
func BuildEngine(b EngineBuilder, opts EngineOptions) Engine {
	if bf, ok := b.(EngineBuilderFor); ok {
		return bf.BuildFor(opts)
	}
	return b.Build()
}

// EngineOptions describe the consumer an engine serves.
type EngineOptions struct {
	// Balancer is the reference's balancer, for clusters whose mesh policy
	// names none (nil: round robin).
	Balancer balancer.Builder
	// Balancers is where balancers named by mesh policies are looked up
	// (nil: balancer.Default).
	Balancers *balancer.Registry
	// Strategy is the reference's cluster strategy, for calls no mesh
	// route gives a retry policy (nil: cluster.Failover()).
	Strategy *cluster.Strategy
	// Service is the referenced interface name.
	Service string
	// Group and Version are the reference's.
	Group, Version string
	// SourceLabels are the calling workload's labels (application.labels),
	// for routes' sourceLabels matches.
	SourceLabels map[string]string
	// Logger is the application's logger.
	Logger *slog.Logger
	// Observer, when set, is told about the engine's ejections,
	// circuit-breaker overflows, retries and injected faults (router-mesh
	// reports them; the service engine does not).
	Observer observer.Observer
}

// Engines holds engine builders by name. The zero value is not ready; use
// NewEngines.
type Engines struct{ set plugin.Set[EngineBuilder] }

// NewEngines returns a set holding the given builders.
func NewEngines(builders ...EngineBuilder) *Engines {
	e := &Engines{}
	e.set.Kind = "routing engine"
	for _, b := range builders {
		e.Register(b)
	}
	return e
}

// Register adds or replaces a builder by name; it panics on an empty name.
func (e *Engines) Register(b EngineBuilder) {
	if err := e.set.Register(b); err != nil {
		panic(err)
	}
}

// Get returns the builder registered under name.
func (e *Engines) Get(name string) (EngineBuilder, error) { return e.set.Get(name) }

// Names lists the registered engines.
func (e *Engines) Names() []string { return e.set.Names() }

// DefaultEngines is the global set of engines, holding "service";
// router-mesh can register "mesh" here, or applications in a set of their
// own.
var DefaultEngines = NewEngines(ServiceBuilder())
