package istiofx_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"
	"go.uber.org/goleak"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	registryistio "github.com/shoalmesh/shoal/registry-istio"
	"github.com/shoalmesh/shoal/registry-istio/bootstrap"
	"github.com/shoalmesh/shoal/registry-istio/identity"
	"github.com/shoalmesh/shoal/registry-istio/istiofx"
	"github.com/shoalmesh/shoal/registry-istio/mapping"
	"github.com/shoalmesh/shoal/registry-istio/xdsclient"
	"github.com/shoalmesh/shoal/registry-istio/xdstest"
	"github.com/shoalmesh/shoal/sdk/app"
	sdkconfig "github.com/shoalmesh/shoal/sdk/config"
	"github.com/shoalmesh/shoal/sdk/registry"
	"github.com/shoalmesh/shoal/sdk/shoalfx"
	"github.com/shoalmesh/shoal/sdk/tri"
	"github.com/shoalmesh/shoal/triple"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func config(addr string) *bootstrap.Config {
	return &bootstrap.Config{ServerURI: addr, Node: bootstrap.Identity{PodName: "p", Namespace: "default", IPs: []string{"10.0.0.1"}}.Node()}
}

// The module starts, serves a discovery that resolves a target through
// xdstest, and stops cleanly.
func TestModuleStartDiscoverStop(t *testing.T) {
	srv := xdstest.NewServer(t)
	srv.Set(xdstest.Service("greeter.default.svc.cluster.local", 20000, xdstest.Endpoint{IP: "10.1.0.1", Port: 20000}))
	var (
		d registry.Registry
		c *xdsclient.Client
	)
	app := fxtest.New(t,
		istiofx.Module,
		fx.Supply(config(srv.Address())),
		fx.Supply(fx.Annotate(xdsclient.WithBackoff(10*time.Millisecond, 100*time.Millisecond), fx.ResultTags(`group:"xdsclient.options"`))),
		fx.Populate(fx.Annotate(&d, fx.ParamTags(`name:"istio"`)), &c),
	)
	app.RequireStart()
	if st := c.Status().State; st != xdsclient.Idle {
		t.Fatalf("state after start %v, want IDLE (nothing watched)", st)
	}
	w, err := d.Watch(context.Background(), registry.Key{Interface: "xds:///greeter.default.svc.cluster.local:20000"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := w.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Services()) != 1 || len(s.Services()[0].Endpoints) != 1 {
		t.Fatalf("snapshot services %+v", s.Services())
	}
	_ = w.Close()
	app.RequireStop()
}

func TestValidateApp(t *testing.T) {
	if err := fx.ValidateApp(istiofx.Module, fx.Supply(config("127.0.0.1:15010")), fx.Invoke(func(registry.Registry) {})); err == nil {
		t.Fatal("an unnamed registry.Registry must not be provided (it is named \"istio\")")
	}
	if err := fx.ValidateApp(istiofx.Module, fx.Supply(config("127.0.0.1:15010")),
		fx.Invoke(fx.Annotate(func(registry.Registry, *xdsclient.Client, *registryistio.Registry) {}, fx.ParamTags(`name:"istio"`)))); err != nil {
		t.Fatal(err)
	}
}

func TestBadBootstrapFailsStart(t *testing.T) {
	app := fx.New(istiofx.Module, fx.Supply(&bootstrap.Config{}), fx.Invoke(func(*xdsclient.Client) {}), fx.NopLogger)
	if err := app.Err(); err == nil {
		t.Fatal("an empty bootstrap was accepted")
	}
}

// With registryistio.Security in the graph, the module builds the workload
// identity, and shoalfx's app, configured with a registry of kind istio,
// uses this registry: its server is guarded (plaintext refused under
// STRICT) and its reference calls the ISTIO_MUTUAL cluster over mutual
// TLS.
func TestSecureShoalfxApp(t *testing.T) {
	const id = "spiffe://cluster.local/ns/default/sa/greeter"
	srv := xdstest.NewServer(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	target, err := mapping.Scheme{}.Target(registry.Key{Interface: "grpc.health.v1.Health"})
	if err != nil {
		t.Fatal(err)
	}
	host, _, _ := net.SplitHostPort(target)
	srv.Set(xdstest.StrictService(host, 50051, xdstest.Endpoint{IP: "127.0.0.1", Port: uint32(port)}, id))
	bc, err := bootstrap.FromFile(xdstest.AgentFiles(t, t.TempDir(), srv.Address(), "sidecar~127.0.0.1~greeter-0.default~default.svc.cluster.local", id))
	if err != nil {
		t.Fatal(err)
	}
	var (
		a   *app.App
		src *identity.Source
	)
	fxApp := fxtest.New(t,
		istiofx.Module,
		fx.Supply(bc, registryistio.Security{Identity: registryistio.IdentityAgent}),
		shoalfx.Module,
		shoalfx.ConfigOptions(sdkconfig.WithoutFile(), sdkconfig.WithEnv(func(string) (string, bool) { return "", false }),
			sdkconfig.WithApplicationName("greeter"),
			sdkconfig.WithRegistry(sdkconfig.Registry{Name: "mesh", Kind: "istio"}),
			sdkconfig.WithProtocol(sdkconfig.Protocol{Host: "127.0.0.1", Port: port}),
			sdkconfig.WithService(sdkconfig.Service{Interface: "grpc.health.v1.Health"}),
			sdkconfig.WithReference(sdkconfig.Reference{Name: "health", Interface: "grpc.health.v1.Health"})),
		shoalfx.Triple(nil, nil, triple.WithLogger(quiet)),
		fx.Supply(quiet),
		fx.Populate(&a, &src),
	)
	fxApp.RequireStart()
	defer fxApp.RequireStop()
	if src == nil || src.ID().String() != id {
		t.Fatalf("identity %v, want %s", src, id)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ref, err := a.Reference("health")
	if err != nil {
		t.Fatal(err)
	}
	out := new(healthpb.HealthCheckResponse)
	if err := tri.NewClient(ref).Invoke(ctx, "/grpc.health.v1.Health/Check", &healthpb.HealthCheckRequest{}, out); err != nil || out.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("call through the ISTIO_MUTUAL cluster: %v, %v", out.GetStatus(), err)
	}
	cc, err := triple.Dial(net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cc.Close() }()
	err = cc.Invoke(ctx, "/grpc.health.v1.Health/Check", &healthpb.HealthCheckRequest{}, new(healthpb.HealthCheckResponse))
	if triple.CodeOf(err) != triple.CodeUnavailable {
		t.Fatalf("a plaintext client under STRICT: %v, want UNAVAILABLE", err)
	}
}

// shoal.yaml cannot configure the registry istiofx provides.
func TestProvidedRegistryRefusesParams(t *testing.T) {
	var b []registry.Builder
	app := fxtest.New(t, istiofx.Module, fx.Supply(config("127.0.0.1:15010")),
		fx.Populate(fx.Annotate(&b, fx.ParamTags(`group:"shoal.registries"`))))
	app.RequireStart()
	defer app.RequireStop()
	if len(b) != 1 || b[0].Name() != "istio" {
		t.Fatalf("builders %v, want one of kind istio", b)
	}
	if _, err := b[0].Build(context.Background(), registry.Config{Name: "mesh", Params: map[string]string{"identity": "istiod"}}); err == nil || !strings.Contains(err.Error(), "istiofx provides the istio registry") {
		t.Fatalf("params on the provided registry: %v", err)
	}
}
