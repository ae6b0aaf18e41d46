package observabilityfx

import (
	"context"
	"slices"

	"go.opentelemetry.io/otel/trace"
	"go.uber.org/fx"

	"github.com/shoalmesh/shoal/observability/admin"
	"github.com/shoalmesh/shoal/observability/istiometrics"
	"github.com/shoalmesh/shoal/observability/tracing"
	"github.com/shoalmesh/shoal/sdk/app"
	"github.com/shoalmesh/shoal/sdk/consumer"
	"github.com/shoalmesh/shoal/sdk/filter"
	"github.com/shoalmesh/shoal/sdk/shoalfx"
	"github.com/shoalmesh/shoal/sdk/tri"
	"github.com/shoalmesh/shoal/triple"
)

// Module provides the metrics, their server filter and the admin endpoint.
var Module = fx.Module("shoal.observability", fx.Provide(NewMetrics, NewTracing, NewAdmin), fx.Invoke(func(*admin.Server) {}))

// Config configures the module; supply one to change the defaults.
type Config struct {
	// AdminAddress is the admin endpoint's host:port (default admin.DefaultAddress).
	AdminAddress string
	// MetricsOptions are passed to istiometrics.New.
	MetricsOptions []istiometrics.Option
	// ServerFilterOrder places the metrics filter in the server chain
	// (default 0: outermost but for tracing, so it times the whole call);
	// the tracing filter takes the order before it.
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

// TracingParams are NewTracing's inputs.
type TracingParams struct {
	fx.In
	TracerProvider trace.TracerProvider `optional:"true"`
	Config         *Config              `optional:"true"`
}

// TracingResult is what NewTracing provides: nothing when the graph has
// no TracerProvider (tracing off).
type TracingResult struct {
	fx.Out
	Tracing       *tracing.Tracing
	ServerFilters []filter.Server `group:"shoal.server_filters,flatten"`
}

// NewTracing turns tracing on when the graph has a trace.TracerProvider
// (tracing.NewOTLPTracerProvider makes one from OTEL_* variables): its
// server filter joins shoalfx's group, outermost, and Triple adds its
// client options.
func NewTracing(p TracingParams) TracingResult {
	if p.TracerProvider == nil {
		return TracingResult{}
	}
	order := -1
	if p.Config != nil {
		order = p.Config.ServerFilterOrder - 1
	}
	t := tracing.New(tracing.WithTracerProvider(p.TracerProvider))
	return TracingResult{Tracing: t, ServerFilters: []filter.Server{t.ServerFilter(order)}}
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

// transportParams are what Triple's transport is built from.
type transportParams struct {
	fx.In
	Metrics *istiometrics.Metrics
	Tracing *tracing.Tracing `optional:"true"`
}

// Triple is shoalfx.Triple with Istio's client metrics (and tracing, when
// on) on the transport: use it in its place.
func Triple(exports []tri.Export, clientOpts []triple.ClientOption, serverOpts ...triple.ServerOption) fx.Option {
	servers := tri.NewServers(exports, serverOpts...)
	return fx.Options(
		fx.Provide(fx.Annotate(func(p transportParams) *tri.Transport {
			opts := append(slices.Clone(clientOpts), p.Metrics.ClientOptions()...)
			if p.Tracing != nil {
				opts = append(opts, p.Tracing.ClientOptions()...)
			}
			return tri.NewTransport(opts...)
		}, fx.As(new(consumer.Transport)))),
		fx.Supply(servers.Factory()),
		fx.Supply(shoalfx.Serving(servers.SetServing)),
	)
}
