package router

import (
	"context"
	"log/slog"

	"github.com/shoalmesh/shoal/sdk/call"
	"github.com/shoalmesh/shoal/sdk/internal/plugin"
	"github.com/shoalmesh/shoal/sdk/mesh"
)

// Invoker sends one try of a call to one endpoint; the consumer supplies
// it, over its connection to ep. info is the call as the engine edited it
// (header operations applied).
type Invoker func(ctx context.Context, ep *mesh.Endpoint, info *call.Info) error

// Engine runs whole calls against mesh snapshots: route matching, weighted
// destinations, faults, mirrors, timeouts, retries, balancing and outlier
// detection. It is the richer alternative to Router for implementations
// that own the retry loop, such as router-mesh's Istio engine (whose
// *Router satisfies Engine when its Invoker is this type). A consumer feeds
// it every snapshot with Update and sends every call through Invoke; it
// owns the engine and closes it.
type Engine interface {
	// Update installs a snapshot; on error the previous one stays in use.
	// It must not block Invoke.
	Update(snap *mesh.Snapshot) error
	// Invoke runs one call, calling invoke once per try.
	Invoke(ctx context.Context, info *call.Info, invoke Invoker) error
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
	// Service is the referenced interface name.
	Service string
	// Group and Version are the reference's.
	Group, Version string
	// SourceLabels are the calling workload's labels (application.labels),
	// for routes' sourceLabels matches.
	SourceLabels map[string]string
	// Logger is the application's logger.
	Logger *slog.Logger
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

// DefaultEngines is the global set of engines; router-mesh can register
// "mesh" here, or applications in a set of their own.
var DefaultEngines = NewEngines()
