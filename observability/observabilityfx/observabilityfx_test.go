package observabilityfx_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"
	"go.uber.org/goleak"

	"github.com/shoalmesh/shoal/observability/admin"
	"github.com/shoalmesh/shoal/observability/internal/echotest"
	"github.com/shoalmesh/shoal/observability/istiometrics"
	"github.com/shoalmesh/shoal/observability/observabilityfx"
	"github.com/shoalmesh/shoal/observability/peer"
	"github.com/shoalmesh/shoal/sdk/app"
	"github.com/shoalmesh/shoal/sdk/config"
	"github.com/shoalmesh/shoal/sdk/shoalfx"
	"github.com/shoalmesh/shoal/sdk/tri"
	"github.com/shoalmesh/shoal/triple"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func noEnv(string) (string, bool) { return "", false }

func options(t *testing.T) fx.Option {
	w := peer.Workload{Name: "echo-0", Namespace: "shop", WorkloadName: "echo", ClusterID: "Kubernetes", ServiceAccount: "echo", Labels: map[string]string{"app": "echo", "version": "v1"}}
	return fx.Options(
		fx.NopLogger,
		fx.Supply(slog.New(slog.NewTextHandler(io.Discard, nil))),
		shoalfx.Module,
		shoalfx.ConfigOptions(config.WithoutFile(), config.WithEnv(noEnv), config.WithApplicationName("echo"),
			config.WithRegistry(config.Registry{Name: "local", Kind: "file", Address: filepath.Join(t.TempDir(), "registry.yaml")}),
			config.WithProtocol(config.Protocol{Host: "127.0.0.1", Port: 0}),
			config.WithService(config.Service{Interface: echotest.Service}),
			config.WithReference(config.Reference{Name: "echo", Interface: echotest.Service})),
		observabilityfx.Module,
		fx.Supply(&observabilityfx.Config{AdminAddress: "127.0.0.1:0", MetricsOptions: []istiometrics.Option{istiometrics.WithWorkload(w)}}),
		observabilityfx.Triple([]tri.Export{{Desc: &echotest.Desc, Impl: echotest.Impl{}}}, []triple.ClientOption{}, triple.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))),
	)
}

func TestValidateApp(t *testing.T) {
	if err := fx.ValidateApp(options(t)); err != nil {
		t.Fatal(err)
	}
}

// TestModule: an app calling itself through the module's transport and
// server filter reports the call on both sides at the admin endpoint,
// which is ready while the app runs.
func TestModule(t *testing.T) {
	a, s := startApp(t)
	call(t, a)
	base := "http://" + s.Addr().String()
	if code, _ := echotest.Get(t, base+"/readyz"); code != http.StatusOK {
		t.Errorf("/readyz = %d while the app runs", code)
	}
	_, body := echotest.Get(t, base+"/metrics")
	for _, want := range []string{`istio_requests_total{connection_security_policy="unknown"`, `reporter="source"`, `reporter="destination"`, `source_workload="echo"`} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s:\n%s", want, body)
		}
	}
}

// TestModuleWithTracing: with a TracerProvider in the graph, the same call
// yields a client span and its child server span.
func TestModuleWithTracing(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	a, _ := startApp(t, fx.Supply(fx.Annotate(tp, fx.As(new(trace.TracerProvider)))))
	call(t, a)
	var client, server *tracetest.SpanStub
	for _, sp := range exp.GetSpans() {
		switch sp.SpanKind {
		case trace.SpanKindClient:
			client = &sp
		case trace.SpanKindServer:
			server = &sp
		}
	}
	if client == nil || server == nil || server.Parent.SpanID() != client.SpanContext.SpanID() {
		t.Fatalf("spans %v, want a client span and its child server span", exp.GetSpans())
	}
}

func startApp(t *testing.T, extra ...fx.Option) (*app.App, *admin.Server) {
	t.Helper()
	var a *app.App
	var s *admin.Server
	fa := fxtest.New(t, options(t), fx.Options(extra...), fx.Populate(&a, &s))
	fa.RequireStart()
	t.Cleanup(fa.RequireStop)
	return a, s
}

func call(t *testing.T, a *app.App) {
	t.Helper()
	ref, err := a.Reference("echo")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := ref.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	if err := echotest.Unary(ctx, tri.NewClient(ref), "hi"); err != nil {
		t.Fatal(err)
	}
}
