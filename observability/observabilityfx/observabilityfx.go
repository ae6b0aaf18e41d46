package observabilityfx

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/fx"

	"github.com/shoalmesh/shoal/observability/accesslog"
	"github.com/shoalmesh/shoal/observability/admin"
	"github.com/shoalmesh/shoal/observability/istiometrics"
	"github.com/shoalmesh/shoal/observability/meshmetrics"
	"github.com/shoalmesh/shoal/observability/tracing"
	"github.com/shoalmesh/shoal/sdk/app"
	"github.com/shoalmesh/shoal/sdk/config"
	"github.com/shoalmesh/shoal/sdk/consumer"
	"github.com/shoalmesh/shoal/sdk/filter"
	"github.com/shoalmesh/shoal/sdk/observer"
	"github.com/shoalmesh/shoal/sdk/shoalfx"
	"github.com/shoalmesh/shoal/sdk/tri"
	"github.com/shoalmesh/shoal/triple"
)

// Module provides the metrics, their server filter, the mesh client's
// observer (package meshmetrics), tracing, the access log and the admin
// endpoint, as shoal.yaml's observability section says (config.Observability).
var Module = fx.Module("shoal.observability", fx.Provide(NewMetrics, NewTracing, NewAccessLog, NewAdmin), fx.Invoke(func(*admin.Server) {}))

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
	Config *Config        `optional:"true"`
	Shoal  *config.Config `optional:"true"`
}

// MetricsResult is what NewMetrics provides.
type MetricsResult struct {
	fx.Out
	Metrics       *istiometrics.Metrics
	ServerFilters []filter.Server `group:"shoal.server_filters,flatten"`
	// Observer is the mesh client's metrics (meshmetrics), which shoalfx
	// gives every reference and routing engine; nil with metrics off.
	Observer observer.Observer
}

// NewMetrics builds the metrics, their server filter and the mesh
// client's metrics, on the same registry. With
// observability.metrics.enabled false in shoal.yaml, nothing is recorded:
// the metrics exist (the admin endpoint serves the registry) but neither
// filter, interceptors nor observer are installed.
func NewMetrics(p MetricsParams) (MetricsResult, error) {
	var cfg Config
	if p.Config != nil {
		cfg = *p.Config
	}
	m, err := istiometrics.New(cfg.MetricsOptions...)
	if err != nil {
		return MetricsResult{}, err
	}
	if !metricsOn(p.Shoal) {
		return MetricsResult{Metrics: m}, nil
	}
	r := MetricsResult{Metrics: m, ServerFilters: []filter.Server{m.ServerFilter(cfg.ServerFilterOrder)}}
	if reg := m.Registry(); reg != nil {
		mm, err := meshmetrics.New(reg)
		if err != nil {
			return MetricsResult{}, err
		}
		r.Observer = mm
	}
	return r, nil
}

func metricsOn(c *config.Config) bool { return c == nil || c.Observability.Metrics.On() }

// TracingParams are NewTracing's inputs.
type TracingParams struct {
	fx.In
	Lifecycle      fx.Lifecycle
	TracerProvider trace.TracerProvider `optional:"true"`
	Config         *Config              `optional:"true"`
	Shoal          *config.Config       `optional:"true"`
}

// TracingResult is what NewTracing provides: nothing when the graph has
// no TracerProvider (tracing off).
type TracingResult struct {
	fx.Out
	Tracing       *tracing.Tracing
	ServerFilters []filter.Server `group:"shoal.server_filters,flatten"`
}

// NewTracing turns tracing on when the graph has a trace.TracerProvider
// (tracing.NewOTLPTracerProvider makes one from OTEL_* variables), or else
// when shoal.yaml names a sampler (observability.tracing.sampler): then it
// builds an OTLP TracerProvider with that sampler, shut down (flushing
// its spans) when the app stops. The server filter joins shoalfx's group,
// outermost, and Triple adds the client options.
func NewTracing(p TracingParams) (TracingResult, error) {
	tp := p.TracerProvider
	if tp == nil && p.Shoal != nil && p.Shoal.Observability.Tracing.Sampler != "" {
		sampler, err := SamplerFor(p.Shoal.Observability.Tracing)
		if err != nil {
			return TracingResult{}, err
		}
		otlp, err := tracing.NewOTLPTracerProvider(context.Background(), sdktrace.WithSampler(sampler))
		if err != nil {
			return TracingResult{}, err
		}
		p.Lifecycle.Append(fx.StopHook(otlp.Shutdown))
		tp = otlp
	}
	if tp == nil {
		return TracingResult{}, nil
	}
	order := -1
	if p.Config != nil {
		order = p.Config.ServerFilterOrder - 1
	}
	t := tracing.New(tracing.WithTracerProvider(tp))
	return TracingResult{Tracing: t, ServerFilters: []filter.Server{t.ServerFilter(order)}}, nil
}

// SamplerFor returns the sampler shoal.yaml's tracing section names, as
// OpenTelemetry reads OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG.
func SamplerFor(t config.Tracing) (sdktrace.Sampler, error) {
	ratio := sdktrace.TraceIDRatioBased(t.Ratio())
	switch t.Sampler {
	case "always_on":
		return sdktrace.AlwaysSample(), nil
	case "always_off":
		return sdktrace.NeverSample(), nil
	case "traceidratio":
		return ratio, nil
	case "parentbased_always_on", "":
		return sdktrace.ParentBased(sdktrace.AlwaysSample()), nil
	case "parentbased_always_off":
		return sdktrace.ParentBased(sdktrace.NeverSample()), nil
	case "parentbased_traceidratio":
		return sdktrace.ParentBased(ratio), nil
	}
	return nil, fmt.Errorf("observabilityfx: tracing sampler %q is unknown; use one of %s", t.Sampler, strings.Join(config.Samplers, ", "))
}

// AccessLogParams are NewAccessLog's inputs.
type AccessLogParams struct {
	fx.In
	Logger *slog.Logger   `optional:"true"`
	Shoal  *config.Config `optional:"true"`
}

// AccessLogResult is what NewAccessLog provides: nothing when the access
// log is off.
type AccessLogResult struct {
	fx.Out
	ClientFilters []filter.Client `group:"shoal.client_filters,flatten"`
	ServerFilters []filter.Server `group:"shoal.server_filters,flatten"`
}

// NewAccessLog turns the access log on when shoal.yaml's
// observability.accessLog.every is above 0: one successful call in every
// that many, and every failed call, logged through the graph's
// *slog.Logger (else slog.Default()), outbound and inbound.
func NewAccessLog(p AccessLogParams) (AccessLogResult, error) {
	if p.Shoal == nil || p.Shoal.Observability.AccessLog.Every <= 0 {
		return AccessLogResult{}, nil
	}
	logger := p.Logger
	if logger == nil {
		logger = slog.Default()
	}
	l, err := accesslog.New(logger, accesslog.WithEvery(p.Shoal.Observability.AccessLog.Every))
	if err != nil {
		return AccessLogResult{}, err
	}
	// Outermost on both sides but for tracing (-1) and metrics (0), so a
	// line carries the trace ID.
	return AccessLogResult{ClientFilters: []filter.Client{l.ClientFilter(1)}, ServerFilters: []filter.Server{l.ServerFilter(1)}}, nil
}

// AdminParams are NewAdmin's inputs.
type AdminParams struct {
	fx.In
	Lifecycle fx.Lifecycle
	Metrics   *istiometrics.Metrics
	Config    *Config        `optional:"true"`
	App       *app.App       `optional:"true"`
	Shoal     *config.Config `optional:"true"`
}

// NewAdmin builds the admin endpoint serving the metrics, listening from
// start to stop, on shoal.yaml's observability.admin.address when set
// (so SHOAL_OBSERVABILITY_ADMIN_ADDRESS changes it), else
// Config.AdminAddress, else admin.DefaultAddress. With an *app.App in the graph, /readyz turns ready after
// the app started (fx runs this hook after the app's) and unready first
// on stop; without one, as soon as the endpoint listens. With the app, it
// also serves app.MeshViewPath (/debug/mesh): the app's MeshView as JSON,
// of the references of one interface with ?interface=.
func NewAdmin(p AdminParams) (*admin.Server, error) {
	opts := []admin.Option{admin.WithGatherer(p.Metrics.Registry())}
	switch {
	case p.Shoal != nil && p.Shoal.Observability.Admin.Address != "":
		opts = append(opts, admin.WithAddress(p.Shoal.Observability.Admin.Address))
	case p.Config != nil && p.Config.AdminAddress != "":
		opts = append(opts, admin.WithAddress(p.Config.AdminAddress))
	}
	s, err := admin.New(opts...)
	if err != nil {
		return nil, err
	}
	if a := p.App; a != nil {
		// What each reference routes by, for `shoal show --app`.
		err := s.HandleJSON(app.MeshViewPath, func(ctx context.Context) (any, error) {
			return a.MeshView(admin.Query(ctx).Get("interface")), nil
		})
		if err != nil {
			return nil, err
		}
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
	Shoal   *config.Config   `optional:"true"`
}

// Triple is shoalfx.Triple with Istio's client metrics (unless shoal.yaml
// turns metrics off) and tracing (when on) on the transport: use it in its
// place.
func Triple(exports []tri.Export, clientOpts []triple.ClientOption, serverOpts ...triple.ServerOption) fx.Option {
	servers := tri.NewServers(exports, serverOpts...)
	return fx.Options(
		fx.Provide(fx.Annotate(func(p transportParams) *tri.Transport {
			opts := slices.Clone(clientOpts)
			if metricsOn(p.Shoal) {
				opts = append(opts, p.Metrics.ClientOptions()...)
			}
			if p.Tracing != nil {
				opts = append(opts, p.Tracing.ClientOptions()...)
			}
			return tri.NewTransport(opts...)
		}, fx.As(new(consumer.Transport)))),
		fx.Supply(servers.Factory()),
		fx.Supply(shoalfx.Serving(servers.SetServing)),
	)
}
