package istiofx

import (
	"context"
	"log/slog"

	"go.uber.org/fx"

	"github.com/shoalmesh/shoal/registry-istio/bootstrap"
	"github.com/shoalmesh/shoal/registry-istio/mapping"
	"github.com/shoalmesh/shoal/registry-istio/xdsclient"
	"github.com/shoalmesh/shoal/registry-istio/xdsmesh"
	"github.com/shoalmesh/shoal/sdk/registry"
)

// Module provides the istiod client and discovery.
var Module = fx.Module("registry-istio", fx.Provide(New))

// Params are New's inputs. Config and Logger are optional; ClientOptions
// come from an `group:"xdsclient.options"` value group.
type Params struct {
	fx.In

	Lifecycle     fx.Lifecycle
	Config        *bootstrap.Config  `optional:"true"`
	Logger        *slog.Logger       `optional:"true"`
	ClientOptions []xdsclient.Option `group:"xdsclient.options"`
	// Scheme is the interface-to-host convention; the zero value is the
	// default.
	Scheme mapping.Scheme `optional:"true"`
}

// Result is what New provides.
type Result struct {
	fx.Out

	Client    *xdsclient.Client
	Discovery *xdsmesh.Discovery
	// Registry is the same discovery as a registry.Discovery, named "istio".
	Registry registry.Discovery `name:"istio"`
}

// New builds the client and the discovery and closes the client on stop.
func New(p Params) (Result, error) {
	cfg := p.Config
	if cfg == nil {
		var err error
		if cfg, err = bootstrap.Load(); err != nil {
			return Result{}, err
		}
	}
	opts := p.ClientOptions
	if p.Logger != nil {
		opts = append([]xdsclient.Option{xdsclient.WithLogger(p.Logger)}, opts...)
	}
	c, err := xdsclient.New(cfg, opts...)
	if err != nil {
		return Result{}, err
	}
	p.Lifecycle.Append(fx.Hook{OnStop: func(context.Context) error { return c.Close() }})
	d := xdsmesh.NewDiscovery(c, xdsmesh.WithLogger(p.Logger), xdsmesh.WithScheme(p.Scheme))
	return Result{Client: c, Discovery: d, Registry: d}, nil
}
