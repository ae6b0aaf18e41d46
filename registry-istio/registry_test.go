package registryistio_test

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	registryistio "github.com/shoalmesh/shoal/registry-istio"
	"github.com/shoalmesh/shoal/registry-istio/bootstrap"
	"github.com/shoalmesh/shoal/registry-istio/xdsclient"
	"github.com/shoalmesh/shoal/registry-istio/xdstest"
	"github.com/shoalmesh/shoal/sdk/registry"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

const seHost = "greet.greetservice.default.shoal.local"

func newRegistry(t *testing.T, srv *xdstest.Server) *registryistio.Registry {
	t.Helper()
	cfg := &bootstrap.Config{ServerURI: srv.Address(), Node: bootstrap.Identity{
		PodName: "greeter-0", Namespace: "default", IPs: []string{"127.0.0.1"}, AutoRegisterGroup: "greeter",
	}.Node()}
	r, err := registryistio.New(cfg, registryistio.WithLogger(quiet),
		// Names istiod does not know are reported missing after 1 s.
		registryistio.WithClientOptions(xdsclient.WithBackoff(10*time.Millisecond, 100*time.Millisecond), xdsclient.WithResourceTimeout(time.Second)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r
}

// Register succeeds once istiod serves the provider's address under its
// interface's host, and the node was announced with its WorkloadGroup.
func TestRegisterSeesItselfThroughIstiod(t *testing.T) {
	srv := xdstest.NewServer(t)
	srv.Set(xdstest.Service(seHost, 50051, xdstest.Endpoint{IP: "127.0.0.1", Port: 20000}))
	r := newRegistry(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	inst := registry.Instance{Key: registry.Key{Interface: "greet.GreetService"}, Address: "127.0.0.1:20000"}
	if err := r.Register(ctx, inst); err != nil {
		t.Fatal(err)
	}
	first := srv.Requests()[0]
	if first.Node.GetMetadata().GetFields()["AUTO_REGISTER_GROUP"].GetStringValue() != "greeter" {
		t.Fatalf("first request node %v", first.Node)
	}
	if err := r.Deregister(ctx, inst); err != nil {
		t.Fatal(err)
	}
}

// Without a ServiceEntry selecting it, Register fails in time and says
// what to apply.
func TestRegisterFailsWithoutServiceEntry(t *testing.T) {
	srv := xdstest.NewServer(t)
	// The host exists but serves another workload.
	srv.Set(xdstest.Service(seHost, 50051, xdstest.Endpoint{IP: "127.0.0.9", Port: 20000}))
	r := newRegistry(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err := r.Register(ctx, registry.Instance{Key: registry.Key{Interface: "greet.GreetService"}, Address: "127.0.0.1:20000"})
	for _, want := range []string{"greet.GreetService is not served at " + seHost + ":50051", "no endpoint 127.0.0.1:20000", "apply its ServiceEntry", "hosts [" + seHost + "]"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("err = %v, want it to contain %q", err, want)
		}
	}
	if err := r.Register(context.Background(), registry.Instance{Key: registry.Key{Interface: "greet.GreetService"}}); err == nil {
		t.Fatal("an instance without an address was accepted")
	}
}

// The builder reads the environment, takes the address from the config and
// the convention from params, and its registry discovers by interface name.
func TestBuilder(t *testing.T) {
	srv := xdstest.NewServer(t)
	const host = "greet.greetservice.default.corp.mesh"
	srv.Set(xdstest.Service(host, 9000, xdstest.Endpoint{IP: "127.0.0.5", Port: 20000}))
	t.Setenv("SHOAL_XDS_ADDRESS", "")
	t.Setenv("GRPC_XDS_BOOTSTRAP", "")
	t.Setenv("POD_NAME", "consumer-0")
	t.Setenv("INSTANCE_IP", "127.0.0.2")
	b := registryistio.Builder()
	if b.Name() != "istio" {
		t.Fatalf("name %q", b.Name())
	}
	reg, err := b.Build(context.Background(), registry.Config{Name: "mesh", Address: srv.Address(), Params: map[string]string{"domain": "corp.mesh", "port": "9000"}, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	w, err := reg.Watch(context.Background(), registry.Key{Interface: "greet.GreetService"})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := w.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Services()) != 1 || s.Services()[0].Name != "greet.GreetService" || s.Services()[0].Endpoints[0].Address != "127.0.0.5:20000" {
		t.Fatalf("services %+v", s.Services())
	}

	// appPort is the port of app-level references.
	appReg, err := b.Build(context.Background(), registry.Config{Name: "mesh", Address: srv.Address(), Params: map[string]string{"appPort": "9001"}, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer appReg.Close()
	if got, err := appReg.(*registryistio.Registry).Target(registry.Key{Interface: "greet.GreetService", ProvidedBy: "greeter"}); err != nil || got != "greeter.default.svc.cluster.local:9001" {
		t.Fatalf("app-level target with appPort 9001 = %q, %v", got, err)
	}

	for params, want := range map[string]string{"port=x": "params.port \"x\"", "appPort=0": "params.appPort \"0\"", "color=red": "unknown param \"color\""} {
		k, v, _ := strings.Cut(params, "=")
		if _, err := b.Build(context.Background(), registry.Config{Name: "mesh", Params: map[string]string{k: v}}); err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("params %s: err = %v", params, err)
		}
	}
}
