package observabilityfx_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
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
	"github.com/shoalmesh/shoal/observability/tracing"
	"github.com/shoalmesh/shoal/sdk/app"
	"github.com/shoalmesh/shoal/sdk/config"
	"github.com/shoalmesh/shoal/sdk/shoalfx"
	"github.com/shoalmesh/shoal/sdk/tri"
	"github.com/shoalmesh/shoal/triple"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func noEnv(string) (string, bool) { return "", false }

// options is the app under test; modify edits its shoal.yaml (as the code
// layer of config.Load).
func options(t *testing.T, modify ...func(*config.Config)) fx.Option {
	w := peer.Workload{Name: "echo-0", Namespace: "shop", WorkloadName: "echo", ClusterID: "Kubernetes", ServiceAccount: "echo", Labels: map[string]string{"app": "echo", "version": "v1"}}
	return fx.Options(
		fx.NopLogger,
		fx.Supply(slog.New(slog.NewTextHandler(io.Discard, nil))),
		shoalfx.Module,
		shoalfx.ConfigOptions(config.WithoutFile(), config.WithEnv(noEnv), config.WithApplicationName("echo"),
			config.WithRegistry(config.Registry{Name: "local", Kind: "file", Address: filepath.Join(t.TempDir(), "registry.yaml")}),
			config.WithProtocol(config.Protocol{Host: "127.0.0.1", Port: 0}),
			config.WithService(config.Service{Interface: echotest.Service}),
			config.WithReference(config.Reference{Name: "echo", Interface: echotest.Service}),
			config.Modify(func(c *config.Config) {
				for _, m := range modify {
					m(c)
				}
			})),
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
	return startAppWith(t, nil, extra...)
}

func startAppWith(t *testing.T, modify func(*config.Config), extra ...fx.Option) (*app.App, *admin.Server) {
	t.Helper()
	var a *app.App
	var s *admin.Server
	mods := []func(*config.Config){}
	if modify != nil {
		mods = append(mods, modify)
	}
	fa := fxtest.New(t, options(t, mods...), fx.Options(extra...), fx.Populate(&a, &s))
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

// TestModuleExportsMeshClientMetrics: the reference the app builds reports
// its endpoints through the module's observer to /metrics.
func TestModuleExportsMeshClientMetrics(t *testing.T) {
	a, s := startApp(t)
	call(t, a)
	_, body := echotest.Get(t, "http://"+s.Addr().String()+"/metrics")
	for _, want := range []string{`shoal_client_endpoints{reference="test.Echo"} 1`, `shoal_client_endpoints_ready{reference="test.Echo"} 1`} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s:\n%s", want, body)
		}
	}
}

// TestShoalYAMLKeys: shoal.yaml's observability section, given here as
// the code layer of config.Load: metrics off records nothing, the admin
// address wins over Config.AdminAddress (which is invalid here, so the app
// could not start on it), and the access log writes one line per call on
// each side at every: 1.
func TestShoalYAMLKeys(t *testing.T) {
	var logs syncBuffer
	off := false
	a, s := startAppWith(t, func(c *config.Config) {
		c.Observability.Metrics.Enabled = &off
		c.Observability.Admin.Address = "127.0.0.1:0"
		c.Observability.AccessLog.Every = 1
	},
		fx.Decorate(func(*slog.Logger) *slog.Logger { return slog.New(slog.NewTextHandler(&logs, nil)) }),
		fx.Decorate(func(c *observabilityfx.Config) *observabilityfx.Config {
			c2 := *c
			c2.AdminAddress = "not-an-address"
			return &c2
		}),
	)
	call(t, a)
	_, body := echotest.Get(t, "http://"+s.Addr().String()+"/metrics")
	for _, absent := range []string{"istio_requests_total{", "shoal_client_endpoints{"} {
		if strings.Contains(body, absent) {
			t.Errorf("metrics are off, yet /metrics has %s", absent)
		}
	}
	out := logs.String()
	if strings.Count(out, "outbound") != 1 || strings.Count(out, "inbound") != 1 {
		t.Errorf("access log at every: 1 after one call, want one outbound and one inbound line:\n%s", out)
	}
}

// TestShoalYAMLSampler: a sampler named in shoal.yaml turns tracing on
// without a TracerProvider in the graph; SamplerFor reads the names as
// OTEL_TRACES_SAMPLER does.
func TestShoalYAMLSampler(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1") // nothing is exported: no call is made
	var tr *tracing.Tracing
	fa := fxtest.New(t, options(t, func(c *config.Config) { c.Observability.Tracing.Sampler = "always_on" }), fx.Populate(&tr))
	fa.RequireStart()
	fa.RequireStop()
	if tr == nil {
		t.Fatal("sampler always_on in shoal.yaml, yet no tracing")
	}
	for _, tt := range []struct {
		tracing config.Tracing
		want    string
	}{
		{config.Tracing{Sampler: "always_on"}, "AlwaysOnSampler"},
		{config.Tracing{Sampler: "always_off"}, "AlwaysOffSampler"},
		{config.Tracing{Sampler: "traceidratio", SamplerArg: "0.25"}, "TraceIDRatioBased{0.25}"},
		{config.Tracing{Sampler: "parentbased_traceidratio", SamplerArg: "0.01"}, "ParentBased{root:TraceIDRatioBased{0.01}"},
		{config.Tracing{Sampler: "parentbased_always_off"}, "ParentBased{root:AlwaysOffSampler"},
	} {
		s, err := observabilityfx.SamplerFor(tt.tracing)
		if err != nil || !strings.HasPrefix(s.Description(), tt.want) {
			t.Errorf("%+v: %v, %v; want %s", tt.tracing, s, err, tt.want)
		}
	}
	if _, err := observabilityfx.SamplerFor(config.Tracing{Sampler: "sometimes"}); err == nil {
		t.Error("unknown sampler accepted")
	}
}

// syncBuffer is a bytes.Buffer safe for the logger's concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestMeshView: the admin endpoint serves what the app's reference routes
// by at /debug/mesh, all references or those of one interface.
func TestMeshView(t *testing.T) {
	a, s := startApp(t)
	call(t, a)
	base := "http://" + s.Addr().String() + app.MeshViewPath
	code, body := echotest.Get(t, base)
	if code != http.StatusOK {
		t.Fatalf("%s = %d %s", app.MeshViewPath, code, body)
	}
	var got app.MeshView
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatalf("not a MeshView: %v\n%s", err, body)
	}
	if len(got.References) != 1 {
		t.Fatalf("references %s", body)
	}
	r := got.References[0]
	if r.Name != "echo" || r.Interface != echotest.Service || r.Registry != "local (file)" || !r.Ready {
		t.Errorf("reference %+v", r)
	}
	if len(r.View.Services) != 1 || len(r.View.Services[0].Endpoints) != 1 || !r.View.Services[0].Endpoints[0].Ready {
		t.Errorf("view %s", body)
	}
	code, body = echotest.Get(t, base+"?interface=other.Missing")
	if code != http.StatusOK || !strings.Contains(body, `"references": []`) {
		t.Errorf("?interface=other.Missing = %d %s", code, body)
	}
}
