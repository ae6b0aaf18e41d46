package observabilityfx

import (
	"context"
	"slices"

	"go.uber.org/fx"

	"github.com/shoalmesh/shoal/observability/admin"
	"github.com/shoalmesh/shoal/observability/istiometrics"
	"github.com/shoalmesh/shoal/sdk/app"
	"github.com/shoalmesh/shoal/sdk/consumer"
	"github.com/shoalmesh/shoal/sdk/filter"
	"github.com/shoalmesh/shoal/sdk/shoalfx"
	"github.com/shoalmesh/shoal/sdk/tri"
	"github.com/shoalmesh/shoal/triple"
)

// Module provides the metrics, their server filter and the admin endpoint.
var Module = fx.Module("shoal.observability", fx.Provide(NewMetrics, NewAdmin), fx.Invoke(func(*admin.Server) {}))

// Config configures the module; supply one to change the defaults.
type Config struct {
	// AdminAddress is the admin endpoint's host:port (default admin.DefaultAddress).
	AdminAddress string
	// MetricsOptions are passed to istiometrics.New.
	MetricsOptions []istiometrics.Option
	// ServerFilterOrder places the metrics filter in the server chain
	// (default 0: outermost, so it times the whole call).
	ServerFilterOrder int
}

// MetricsParams are NewMetrics' inputs.
type MetricsParams struct {
	fx.In
	Config *Config `optional:"true"`
}

// MetricsResult is what NewMetrics provides.
type MetricsResult struct {
	fx.Out
	Metrics      *istiometrics.Metrics
	ServerFilter filter.Server `group:"shoal.server_filters"`
}

// NewMetrics builds the metrics and their server filter.
func NewMetrics(p MetricsParams) (MetricsResult, error) {
	var cfg Config
	if p.Config != nil {
		cfg = *p.Config
	}
	m, err := istiometrics.New(cfg.MetricsOptions...)
	if err != nil {
		return MetricsResult{}, err
	}
	return MetricsResult{Metrics: m, ServerFilter: m.ServerFilter(cfg.ServerFilterOrder)}, nil
}

// AdminParams are NewAdmin's inputs.
type AdminParams struct {
	fx.In
	Lifecycle fx.Lifecycle
	Metrics   *istiometrics.Metrics
	Config    *Config  `optional:"true"`
	App       *app.App `optional:"true"`
}

// NewAdmin builds the admin endpoint serving the metrics, listening from
// start to stop. With an *app.App in the graph, /readyz turns ready after
// the app started (fx runs this hook after the app's) and unready first
// on stop; without one, as soon as the endpoint listens.
func NewAdmin(p AdminParams) (*admin.Server, error) {
	opts := []admin.Option{admin.WithGatherer(p.Metrics.Registry())}
	if p.Config != nil && p.Config.AdminAddress != "" {
		opts = append(opts, admin.WithAddress(p.Config.AdminAddress))
	}
	s, err := admin.New(opts...)
	if err != nil {
		return nil, err
	}
	p.Lifecycle.Append(fx.Hook{
		OnStart: func(ctx context.Context) error {
			if err := s.Start(ctx); err != nil {
				return err
			}
			s.SetReady(true)
			return nil
		},
		OnStop: func(ctx context.Context) error {
			s.SetReady(false)
			return s.Stop(ctx)
		},
	})
	return s, nil
}

// Triple is shoalfx.Triple with Istio's client metrics on the transport:
// use it in its place.
func Triple(exports []tri.Export, clientOpts []triple.ClientOption, serverOpts ...triple.ServerOption) fx.Option {
	servers := tri.NewServers(exports, serverOpts...)
	return fx.Options(
		fx.Provide(fx.Annotate(func(m *istiometrics.Metrics) *tri.Transport {
			return tri.NewTransport(append(slices.Clone(clientOpts), m.ClientOptions()...)...)
		}, fx.As(new(consumer.Transport)))),
		fx.Supply(servers.Factory()),
		fx.Supply(shoalfx.Serving(servers.SetServing)),
	)
}
