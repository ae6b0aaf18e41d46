package shoalfx_test

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"
	"go.uber.org/goleak"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/shoalmesh/shoal/triple"

	"github.com/shoalmesh/shoal/sdk/app"
	"github.com/shoalmesh/shoal/sdk/balancer"
	"github.com/shoalmesh/shoal/sdk/call"
	"github.com/shoalmesh/shoal/sdk/config"
	"github.com/shoalmesh/shoal/sdk/consumer"
	"github.com/shoalmesh/shoal/sdk/filter"
	"github.com/shoalmesh/shoal/sdk/internal/memnet"
	"github.com/shoalmesh/shoal/sdk/provider"
	"github.com/shoalmesh/shoal/sdk/registry/direct"
	"github.com/shoalmesh/shoal/sdk/router"
	"github.com/shoalmesh/shoal/sdk/shoalfx"
	"github.com/shoalmesh/shoal/sdk/tri"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func noEnv(string) (string, bool) { return "", false }

func greeterYAML(t *testing.T) []byte {
	reg := filepath.Join(t.TempDir(), "registry.yaml")
	return []byte(`
application: {name: greeter}
registries: [{name: local, kind: file, address: ` + reg + `}]
protocols: [{port: 50071, host: 127.0.0.1}]
services: [{interface: greet.GreetService}]
references: [{name: greeter, interface: greet.GreetService}]
`)
}

func wire(n *memnet.Net) fx.Option {
	return fx.Options(
		fx.Supply(fx.Annotate(n, fx.As(new(consumer.Transport)))),
		fx.Supply(app.ServerFactory(func(p config.Protocol, _ *filter.ServerChain) (provider.Server, error) {
			s := n.NewServer(p.Host, p.Port)
			s.Handle("/greet.GreetService/Greet", func(_ context.Context, info *call.Info, req any) (any, error) {
				return "hello " + req.(string) + info.Attachments["x-trace"], nil
			})
			return s, nil
		})),
		fx.Supply(quiet),
	)
}

func TestConfigModule(t *testing.T) {
	var cfg *config.Config
	app := fxtest.New(t,
		shoalfx.ConfigModule,
		shoalfx.ConfigOptions(config.WithEnv(noEnv), config.WithoutFile(), config.WithApplicationName("from-fx")),
		fx.Populate(&cfg),
		fx.NopLogger,
	)
	app.RequireStart().RequireStop()
	if cfg == nil || cfg.Application.Name != "from-fx" || cfg.Protocols[0].Port != config.DefaultPort {
		t.Errorf("config = %+v", cfg)
	}
}

func TestConfigModuleReportsBadConfig(t *testing.T) {
	err := fx.New(
		shoalfx.ConfigModule,
		shoalfx.ConfigOptions(config.WithEnv(noEnv), config.WithYAML("shoal.yaml", []byte("references: [{}]"))),
		fx.Invoke(func(*config.Config) {}),
		fx.NopLogger,
	).Err()
	if err == nil || !strings.Contains(err.Error(), "shoal.yaml: references[0].interface: empty") {
		t.Errorf("fx.New error = %v", err)
	}
}

// TestAppModuleWithOrderedFilters runs provider and consumer in one fx app
// and checks that group filters run by Order, not by group order.
func TestAppModuleWithOrderedFilters(t *testing.T) {
	var mu sync.Mutex
	var order []string
	rec := func(name string, o int) filter.Client {
		return filter.Client{Name: name, Order: o, Unary: func(ctx context.Context, info *call.Info, req, resp any, next filter.UnaryInvoker) error {
			mu.Lock()
			order = append(order, name)
			mu.Unlock()
			info.Attachments = info.Attachments.Clone().Set("x-trace", info.Attachments["x-trace"]+" "+name)
			return next(ctx, info, req, resp)
		}}
	}
	n := memnet.New()
	var got string
	fxApp := fxtest.New(t,
		shoalfx.AppModule,
		fx.Supply(mustLoad(t, greeterYAML(t))),
		wire(n),
		// Given out of order on purpose.
		shoalfx.ClientFilter(rec("metrics", 30)),
		shoalfx.ClientFilter(rec("auth", 10)),
		shoalfx.ClientFilter(rec("tracing", 20)),
		fx.Invoke(func(lc fx.Lifecycle, a *app.App) {
			lc.Append(fx.Hook{OnStart: func(ctx context.Context) error {
				ref, err := a.Reference("greeter")
				if err != nil {
					return err
				}
				ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				defer cancel()
				return ref.Invoke(ctx, "Greet", "fx", &got)
			}})
		}),
		fx.NopLogger,
	)
	fxApp.RequireStart().RequireStop()
	if got != "hello fx auth tracing metrics" || strings.Join(order, ",") != "auth,tracing,metrics" {
		t.Errorf("got %q, filter order %v", got, order)
	}
}

func TestFullModuleWithPlugins(t *testing.T) {
	n := memnet.New()
	var a *app.App
	fxApp := fxtest.New(t,
		shoalfx.Module,
		shoalfx.ConfigOptions(config.WithEnv(noEnv), config.WithYAML("shoal.yaml", greeterYAML(t)),
			config.Modify(func(c *config.Config) { c.References[0].Balancer = "first" })),
		wire(n),
		shoalfx.Balancer(renamed{Builder: balancer.RoundRobin(), name: "first"}),
		shoalfx.Engine(router.ServiceBuilder()),
		shoalfx.Registry(direct.Builder()),
		shoalfx.ServerFilter(filter.Server{Name: "noop", Order: 1}),
		fx.Populate(&a),
		fx.NopLogger,
	)
	fxApp.RequireStart()
	if !a.Ready() {
		t.Error("app not ready after start")
	}
	fxApp.RequireStop()
	if a.Ready() {
		t.Error("app ready after stop")
	}
}

func TestValidateApp(t *testing.T) {
	n := memnet.New()
	err := fx.ValidateApp(
		shoalfx.Module,
		shoalfx.ConfigOptions(config.WithEnv(noEnv), config.WithYAML("shoal.yaml", greeterYAML(t))),
		wire(n),
		shoalfx.ClientFilter(filter.Client{Name: "a", Order: 1}),
		fx.Invoke(func(*app.App) {}),
	)
	if err != nil {
		t.Fatal(err)
	}
	// A missing required dependency is caught without running anything.
	if err := fx.ValidateApp(shoalfx.AppModule, fx.Invoke(func(*app.App) {})); err == nil || !strings.Contains(err.Error(), "*config.Config") {
		t.Errorf("ValidateApp without a config = %v, want a missing *config.Config", err)
	}
}

// renamed registers a built-in balancer under another name, as a plug-in.
type renamed struct {
	balancer.Builder
	name string
}

func (r renamed) Name() string { return r.name }

func mustLoad(t *testing.T, yaml []byte) *config.Config {
	t.Helper()
	c, err := config.Load(config.WithEnv(noEnv), config.WithYAML("shoal.yaml", yaml))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestTripleOverLoopback(t *testing.T) {
	reg := filepath.Join(t.TempDir(), "registry.yaml")
	var a *app.App
	fxApp := fxtest.New(t,
		shoalfx.Module,
		shoalfx.ConfigOptions(config.WithEnv(noEnv), config.WithYAML("shoal.yaml", []byte(`
registries: [{name: local, kind: file, address: `+reg+`}]
protocols: [{port: 0, host: 127.0.0.1}]
services: [{interface: grpc.health.v1.Health}]
references: [{name: health, interface: grpc.health.v1.Health}]
`))),
		shoalfx.Triple(nil, nil, triple.WithLogger(quiet)), // the built-in health service is served anyway
		fx.Supply(quiet),
		fx.Populate(&a),
		fx.NopLogger,
	)
	fxApp.RequireStart()
	ref, err := a.Reference("health")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out := new(healthpb.HealthCheckResponse)
	if err := tri.NewClient(ref).Invoke(ctx, "/grpc.health.v1.Health/Check", &healthpb.HealthCheckRequest{}, out); err != nil {
		t.Fatal(err)
	}
	if out.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("health = %v, want SERVING while the app runs", out.GetStatus())
	}
	fxApp.RequireStop()
}

// A typed client injected before the app starts, resolved on first call.
func TestInjectedClientBeforeStart(t *testing.T) {
	reg := filepath.Join(t.TempDir(), "registry.yaml")
	var inv triple.Invoker
	var a *app.App
	fxApp := fxtest.New(t,
		shoalfx.Module,
		shoalfx.ConfigOptions(config.WithEnv(noEnv), config.WithYAML("shoal.yaml", []byte(`
registries: [{name: local, kind: file, address: `+reg+`}]
protocols: [{port: 0, host: 127.0.0.1}]
services: [{interface: grpc.health.v1.Health}]
references: [{name: health, interface: grpc.health.v1.Health}]
`))),
		shoalfx.Triple(nil, nil, triple.WithLogger(quiet)),
		fx.Supply(quiet),
		fx.Provide(func(a *app.App) triple.Invoker { return tri.AppClient(a, "health") }),
		fx.Populate(&inv, &a),
		fx.NopLogger,
	)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out := new(healthpb.HealthCheckResponse)
	if err := inv.Invoke(ctx, "/grpc.health.v1.Health/Check", &healthpb.HealthCheckRequest{}, out); triple.CodeOf(err) != triple.CodeUnavailable || !strings.Contains(err.Error(), "call Start first") {
		t.Errorf("before start: %v, want UNAVAILABLE saying to start", err)
	}
	fxApp.RequireStart()
	if err := inv.Invoke(ctx, "/grpc.health.v1.Health/Check", &healthpb.HealthCheckRequest{}, out); err != nil || out.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("after start: %v, %v", out.GetStatus(), err)
	}
	fxApp.RequireStop()
}
