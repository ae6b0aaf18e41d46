package tri_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/shoalmesh/shoal/triple"
	"github.com/shoalmesh/shoal/triple/hessian"

	"github.com/shoalmesh/shoal/sdk/app"
	"github.com/shoalmesh/shoal/sdk/config"
	"github.com/shoalmesh/shoal/sdk/tri"
)

// A plain Go type exported in wrapper mode (hessian2, as a plain Java
// interface is served) through the sdk's provider, and called through an
// sdk reference by its interface name, business exception included.
func TestWrapperModeThroughTheSDK(t *testing.T) {
	const iface = "org.example.GreetingService"
	reg := filepath.Join(t.TempDir(), "registry.yaml")
	svc := hessian.NewService(iface).Handle("greet", hessian.Unary(func(_ context.Context, name string) (string, error) {
		if name == "" {
			return "", hessian.Throw("org.example.GreetingException", "a greeting needs a name")
		}
		return "hello, " + name, nil
	}))

	pcfg, err := config.Load(config.WithEnv(noEnv), config.WithoutFile(),
		config.WithApplicationName("java-style-provider"),
		config.WithRegistry(config.Registry{Name: "local", Kind: "file", Address: reg}),
		config.WithProtocol(config.Protocol{Host: "127.0.0.1", Port: 0}),
		config.WithService(config.Service{Interface: iface, Group: "g1", Version: "2.0.0"}))
	if err != nil {
		t.Fatal(err)
	}
	p, err := app.New(pcfg, app.WithLogger(quiet), app.WithDrainDelay(0),
		app.WithServers(tri.NewServers([]tri.Export{{Desc: svc.Desc(), Impl: svc, Group: "g1", Version: "2.0.0"}}, triple.WithLogger(quiet)).Factory()))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = p.Stop(ctx) }()

	ccfg, err := config.Load(config.WithEnv(noEnv), config.WithoutFile(),
		config.WithApplicationName("client"),
		config.WithRegistry(config.Registry{Name: "local", Kind: "file", Address: reg}),
		config.WithReference(config.Reference{Name: "greeting", Interface: iface, Group: "g1", Version: "2.0.0"}))
	if err != nil {
		t.Fatal(err)
	}
	c, err := app.New(ccfg, app.WithLogger(quiet), app.WithTransport(tri.NewTransport()))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Stop(ctx) }()
	ref, err := c.Reference("greeting")
	if err != nil {
		t.Fatal(err)
	}
	client := tri.NewClient(ref)

	got, err := hessian.Call[string](ctx, client, iface, "greet", []hessian.Arg{hessian.String("alice")})
	if err != nil || got != "hello, alice" {
		t.Fatalf("greet(alice) = %q, %v", got, err)
	}
	_, err = hessian.Call[string](ctx, client, iface, "greet", []hessian.Arg{hessian.String("")})
	var ex *hessian.Exception
	if !errors.As(err, &ex) || ex.Class != "org.example.GreetingException" || ex.Message != "a greeting needs a name" {
		t.Fatalf("greet(\"\") = %v (%T), want the thrown org.example.GreetingException", err, err)
	}
}
