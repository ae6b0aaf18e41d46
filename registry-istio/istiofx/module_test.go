package istiofx_test

import (
	"context"
	"testing"
	"time"

	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"
	"go.uber.org/goleak"

	registryistio "github.com/shoalmesh/shoal/registry-istio"
	"github.com/shoalmesh/shoal/registry-istio/bootstrap"
	"github.com/shoalmesh/shoal/registry-istio/istiofx"
	"github.com/shoalmesh/shoal/registry-istio/xdsclient"
	"github.com/shoalmesh/shoal/registry-istio/xdstest"
	"github.com/shoalmesh/shoal/sdk/registry"
)

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
