package istiofx

import (
	"context"
	"log/slog"

	"go.uber.org/fx"

	registryistio "github.com/shoalmesh/shoal/registry-istio"
	"github.com/shoalmesh/shoal/registry-istio/bootstrap"
	"github.com/shoalmesh/shoal/registry-istio/mapping"
	"github.com/shoalmesh/shoal/registry-istio/xdsclient"
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

	Registry *registryistio.Registry
	Client   *xdsclient.Client
	// Named is the same registry as an sdk registry.Registry named "istio".
	Named registry.Registry `name:"istio"`
}

// New builds the registry (its xDS client connects on the first watch or
// registration) and closes it on stop.
func New(p Params) (Result, error) {
	cfg := p.Config
	if cfg == nil {
		var err error
		if cfg, err = bootstrap.Load(); err != nil {
			return Result{}, err
		}
	}
	r, err := registryistio.New(cfg, registryistio.WithLogger(p.Logger), registryistio.WithScheme(p.Scheme),
		registryistio.WithClientOptions(p.ClientOptions...))
	if err != nil {
		return Result{}, err
	}
	p.Lifecycle.Append(fx.Hook{OnStop: func(context.Context) error { return r.Close() }})
	return Result{Registry: r, Client: r.Client(), Named: r}, nil
}
