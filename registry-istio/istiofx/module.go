package istiofx

import (
	"context"
	"fmt"
	"log/slog"

	"go.uber.org/fx"

	registryistio "github.com/shoalmesh/shoal/registry-istio"
	"github.com/shoalmesh/shoal/registry-istio/bootstrap"
	"github.com/shoalmesh/shoal/registry-istio/identity"
	"github.com/shoalmesh/shoal/registry-istio/mapping"
	"github.com/shoalmesh/shoal/registry-istio/xdsclient"
	"github.com/shoalmesh/shoal/sdk/registry"
)

// Module provides the istiod client and discovery.
var Module = fx.Module("registry-istio", fx.Provide(New))

// provided is the builder of kind "istio" that hands the app the
// registry New built, so that shoal.yaml's istio registry is this one
// (one xDS stream, one identity) and app.New secures the app's servers and
// transport with it (app.Securer).
type provided struct{ r *registryistio.Registry }

func (provided) Name() string { return registryistio.Name }

func (b provided) Build(_ context.Context, cfg registry.Config) (registry.Registry, error) {
	if cfg.Address != "" || len(cfg.Params) > 0 {
		return nil, fmt.Errorf("istiofx: registry %q: istiofx provides the istio registry, so shoal.yaml's address and params do not apply; give istiofx a *bootstrap.Config, a mapping.Scheme and a registryistio.Security instead", cfg.Name)
	}
	return b.r, nil
}

// Params are New's inputs. Config, Logger, Scheme and Security are
// optional; ClientOptions come from an `group:"xdsclient.options"` value
// group.
type Params struct {
	fx.In

	Lifecycle     fx.Lifecycle
	Config        *bootstrap.Config  `optional:"true"`
	Logger        *slog.Logger       `optional:"true"`
	ClientOptions []xdsclient.Option `group:"xdsclient.options"`
	// Scheme is the interface-to-host convention; the zero value is the
	// default.
	Scheme mapping.Scheme `optional:"true"`
	// Security says where the workload identity comes from; the zero
	// value is none (registryistio.IdentityOff).
	Security registryistio.Security `optional:"true"`
}

// Result is what New provides.
type Result struct {
	fx.Out

	Registry *registryistio.Registry
	Client   *xdsclient.Client
	// Named is the same registry as an sdk registry.Registry named "istio".
	Named registry.Registry `name:"istio"`
	// Identity is the workload identity, nil when Security.Identity is off.
	Identity *identity.Source
	// Builder is kind "istio" for shoalfx's app: it returns this registry.
	Builder registry.Builder `group:"shoal.registries"`
}

// New builds the registry (its xDS client connects on the first watch or
// registration) and, when Security asks for one, the workload identity
// (from istiod it waits for the first certificate); it closes both on
// stop.
func New(p Params) (Result, error) {
	cfg := p.Config
	if cfg == nil {
		var err error
		if cfg, err = bootstrap.Load(); err != nil {
			return Result{}, err
		}
	}
	src, err := registryistio.NewIdentity(context.Background(), cfg, p.Security, p.Logger)
	if err != nil {
		return Result{}, err
	}
	r, err := registryistio.New(cfg, registryistio.WithLogger(p.Logger), registryistio.WithScheme(p.Scheme),
		registryistio.WithClientOptions(p.ClientOptions...), registryistio.WithIdentity(src))
	if err != nil {
		if src != nil {
			_ = src.Close()
		}
		return Result{}, err
	}
	p.Lifecycle.Append(fx.Hook{OnStop: func(context.Context) error { return r.Close() }})
	return Result{Registry: r, Client: r.Client(), Named: r, Identity: src, Builder: provided{r}}, nil
}
