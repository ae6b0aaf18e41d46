package shoalfx

import (
	"log/slog"

	"go.uber.org/fx"

	"github.com/shoalmesh/shoal/triple"

	"github.com/shoalmesh/shoal/sdk/app"
	"github.com/shoalmesh/shoal/sdk/balancer"
	"github.com/shoalmesh/shoal/sdk/config"
	"github.com/shoalmesh/shoal/sdk/consumer"
	"github.com/shoalmesh/shoal/sdk/filter"
	"github.com/shoalmesh/shoal/sdk/observer"
	"github.com/shoalmesh/shoal/sdk/registry"
	"github.com/shoalmesh/shoal/sdk/router"
	"github.com/shoalmesh/shoal/sdk/tri"
)

// The value group names.
const (
	ClientFilters = "shoal.client_filters"
	ServerFilters = "shoal.server_filters"
	Registries    = "shoal.registries"
	Balancers     = "shoal.balancers"
	Engines       = "shoal.engines"
)

// Module is the whole application: ConfigModule and AppModule.
var Module = fx.Module("shoal", ConfigModule, AppModule)

// ConfigModule provides *config.Config.
var ConfigModule = fx.Module("shoal.config", fx.Provide(NewConfig))

// AppModule provides *app.App and runs it with the fx lifecycle.
var AppModule = fx.Module("shoal.app", fx.Provide(NewApp))

// loadOptions carries the ordered config options into the graph.
type loadOptions struct{ opts []config.Option }

// ConfigOptions supplies options for config.Load, applied in this order.
// Give it at most once.
func ConfigOptions(opts ...config.Option) fx.Option {
	return fx.Supply(loadOptions{opts: opts})
}

// ConfigParams are NewConfig's inputs.
type ConfigParams struct {
	fx.In
	Options loadOptions `optional:"true"`
}

// ConfigResult is NewConfig's output.
type ConfigResult struct {
	fx.Out
	Config *config.Config
}

// NewConfig loads and validates the configuration.
func NewConfig(p ConfigParams) (ConfigResult, error) {
	c, err := config.Load(p.Options.opts...)
	return ConfigResult{Config: c}, err
}

// AppParams are NewApp's inputs. Only Config is required.
type AppParams struct {
	fx.In
	Lifecycle fx.Lifecycle
	Config    *config.Config
	Logger    *slog.Logger       `optional:"true"`
	Transport consumer.Transport `optional:"true"`
	Servers   app.ServerFactory  `optional:"true"`
	Serving   Serving            `optional:"true"`
	Observer  observer.Observer  `optional:"true"`

	ClientFilters []filter.Client        `group:"shoal.client_filters"`
	ServerFilters []filter.Server        `group:"shoal.server_filters"`
	Registries    []registry.Builder     `group:"shoal.registries"`
	Balancers     []balancer.Builder     `group:"shoal.balancers"`
	Engines       []router.EngineBuilder `group:"shoal.engines"`
}

// AppResult is NewApp's output.
type AppResult struct {
	fx.Out
	App *app.App
}

// NewApp builds the app and appends its Start and Stop to the lifecycle.
func NewApp(p AppParams) (AppResult, error) {
	opts := []app.Option{app.WithClientFilters(p.ClientFilters...), app.WithServerFilters(p.ServerFilters...)}
	if p.Logger != nil {
		opts = append(opts, app.WithLogger(p.Logger))
	}
	if p.Transport != nil {
		opts = append(opts, app.WithTransport(p.Transport))
	}
	if p.Servers != nil {
		opts = append(opts, app.WithServers(p.Servers))
	}
	if p.Serving != nil {
		opts = append(opts, app.WithServing(p.Serving))
	}
	if p.Observer != nil {
		opts = append(opts, app.WithObserver(p.Observer))
	}
	if len(p.Registries) > 0 {
		b := registry.NewBuilders()
		for _, n := range app.BuiltinRegistryKinds() {
			x, _ := app.BuiltinRegistry(n)
			b.Register(x)
		}
		for _, x := range p.Registries {
			b.Register(x)
		}
		opts = append(opts, app.WithRegistryBuilders(b))
	}
	if len(p.Balancers) > 0 {
		r := balancer.NewRegistry(balancer.RoundRobin(), balancer.Random(), balancer.LeastRequest(), balancer.RingHash())
		for _, x := range p.Balancers {
			r.Register(x)
		}
		opts = append(opts, app.WithBalancers(r))
	}
	if len(p.Engines) > 0 {
		e := router.NewEngines()
		for _, n := range router.DefaultEngines.Names() {
			b, _ := router.DefaultEngines.Get(n)
			e.Register(b)
		}
		for _, x := range p.Engines {
			e.Register(x)
		}
		opts = append(opts, app.WithEngines(e))
	}
	a, err := app.New(p.Config, opts...)
	if err != nil {
		return AppResult{}, err
	}
	p.Lifecycle.Append(fx.Hook{OnStart: a.Start, OnStop: a.Stop})
	return AppResult{App: a}, nil
}

// Serving is told when the provider becomes ready and stops being ready
// (app.WithServing).
type Serving func(serving bool)

// Triple wires the Triple protocol: a tri.Transport for references built
// with clientOpts, and tri servers serving exports, with grpc.health.v1
// following the provider's readiness.
func Triple(exports []tri.Export, clientOpts []triple.ClientOption, serverOpts ...triple.ServerOption) fx.Option {
	servers := tri.NewServers(exports, serverOpts...)
	return fx.Options(
		fx.Supply(fx.Annotate(tri.NewTransport(clientOpts...), fx.As(new(consumer.Transport)))),
		fx.Supply(servers.Factory()),
		fx.Supply(Serving(servers.SetServing)),
	)
}

// ClientFilter adds a client filter to the group.
func ClientFilter(f filter.Client) fx.Option {
	return fx.Supply(fx.Annotate(f, fx.ResultTags(`group:"shoal.client_filters"`)))
}

// ServerFilter adds a server filter to the group.
func ServerFilter(f filter.Server) fx.Option {
	return fx.Supply(fx.Annotate(f, fx.ResultTags(`group:"shoal.server_filters"`)))
}

// Registry adds a registry builder (a registry kind) to the group.
func Registry(b registry.Builder) fx.Option {
	return fx.Supply(fx.Annotate(b, fx.As(new(registry.Builder)), fx.ResultTags(`group:"shoal.registries"`)))
}

// Balancer adds a balancer builder to the group.
func Balancer(b balancer.Builder) fx.Option {
	return fx.Supply(fx.Annotate(b, fx.As(new(balancer.Builder)), fx.ResultTags(`group:"shoal.balancers"`)))
}

// Engine adds a routing engine builder (router-mesh's) to the group; a
// reference whose router names it runs its calls through it.
func Engine(b router.EngineBuilder) fx.Option {
	return fx.Supply(fx.Annotate(b, fx.As(new(router.EngineBuilder)), fx.ResultTags(`group:"shoal.engines"`)))
}
