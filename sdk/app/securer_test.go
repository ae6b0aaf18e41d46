package app_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoalmesh/shoal/sdk/app"
	"github.com/shoalmesh/shoal/sdk/call"
	"github.com/shoalmesh/shoal/sdk/config"
	"github.com/shoalmesh/shoal/sdk/consumer"
	"github.com/shoalmesh/shoal/sdk/filter"
	"github.com/shoalmesh/shoal/sdk/internal/memnet"
	"github.com/shoalmesh/shoal/sdk/mesh"
	"github.com/shoalmesh/shoal/sdk/provider"
	"github.com/shoalmesh/shoal/sdk/registry"
	"github.com/shoalmesh/shoal/sdk/registry/file"
)

// fakeSecureRegistry is an in-process stand-in for a registry that
// secures traffic (registry-istio with an identity): a file registry whose
// SecureServers puts a "guard" filter in front of the server chain and
// whose SecureTransport counts the dials it sees.
type fakeSecureRegistry struct {
	registry.Registry
	guarded, dials *atomic.Int64
	fail           error
}

func (r fakeSecureRegistry) SecureServers(f app.ServerFactory) (app.ServerFactory, error) {
	if r.fail != nil {
		return nil, r.fail
	}
	guard := filter.Server{Name: "guard", Unary: func(ctx context.Context, info *call.Info, req any, next filter.UnaryHandler) (any, error) {
		r.guarded.Add(1)
		return next(ctx, info, req)
	}}
	return func(p config.Protocol, chain *filter.ServerChain) (provider.Server, error) {
		c, err := chain.Prepend(guard)
		if err != nil {
			return nil, err
		}
		return f(p, c)
	}, nil
}

func (r fakeSecureRegistry) SecureTransport(t consumer.Transport) (consumer.Transport, error) {
	return countingTransport{t: t, dials: r.dials}, nil
}

type countingTransport struct {
	t     consumer.Transport
	dials *atomic.Int64
}

func (c countingTransport) Dial(ctx context.Context, ep *mesh.Endpoint) (consumer.Conn, error) {
	c.dials.Add(1)
	return c.t.Dial(ctx, ep)
}

type fakeSecureBuilder struct{ reg fakeSecureRegistry }

func (fakeSecureBuilder) Name() string { return "fakesecure" }

func (b fakeSecureBuilder) Build(ctx context.Context, cfg registry.Config) (registry.Registry, error) {
	r, err := file.Builder().Build(ctx, cfg)
	if err != nil {
		return nil, err
	}
	b.reg.Registry = r
	return b.reg, nil
}

// chainedServers serves Greet through the server chain the app gives it.
func chainedServers(n *memnet.Net) app.ServerFactory {
	return func(p config.Protocol, chain *filter.ServerChain) (provider.Server, error) {
		s := n.NewServer("127.0.0.1", p.Port)
		s.Handle("/greet.GreetService/Greet", memnet.Handler(chain.Unary(func(_ context.Context, _ *call.Info, req any) (any, error) {
			return "hello " + req.(string), nil
		})))
		return s, nil
	}
}

// A registry that is an app.Securer wraps the app's server factory and
// transport: its server filter runs on every call, its transport dials.
func TestSecurerWrapsServersAndTransport(t *testing.T) {
	reg := filepath.Join(t.TempDir(), "registry.yaml")
	cfg, err := config.Load(config.WithEnv(noEnv), config.WithYAML("shoal.yaml", []byte(`
application: {name: greeter}
registries: [{name: mesh, kind: fakesecure, address: `+reg+`}]
protocols: [{name: tri, port: 50062, host: 127.0.0.1}]
services: [{interface: greet.GreetService}]
references: [{name: greeter, interface: greet.GreetService, timeout: 2s}]
`)))
	if err != nil {
		t.Fatal(err)
	}
	var guarded, dials atomic.Int64
	builders := registry.NewBuilders(fakeSecureBuilder{reg: fakeSecureRegistry{guarded: &guarded, dials: &dials}})
	n := memnet.New()
	a, err := app.New(cfg, app.WithLogger(quiet), app.WithRegistryBuilders(builders),
		app.WithTransport(n), app.WithServers(chainedServers(n)), app.WithDrainDelay(10*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = a.Stop(ctx) }()
	ref, err := a.Reference("greeter")
	if err != nil {
		t.Fatal(err)
	}
	var out string
	if err := ref.Invoke(ctx, "Greet", "alice", &out); err != nil || out != "hello alice" {
		t.Fatalf("call: %q, %v", out, err)
	}
	if guarded.Load() != 1 || dials.Load() != 1 {
		t.Fatalf("the securer's filter saw %d calls and its transport %d dials; want 1 and 1", guarded.Load(), dials.Load())
	}

	// A securer that cannot secure the servers fails New, naming the registry.
	builders = registry.NewBuilders(fakeSecureBuilder{reg: fakeSecureRegistry{guarded: &guarded, dials: &dials, fail: errors.New("no identity")}})
	_, err = app.New(cfg, app.WithLogger(quiet), app.WithRegistryBuilders(builders), app.WithTransport(n), app.WithServers(chainedServers(n)))
	if err == nil || !strings.Contains(err.Error(), "registry mesh: secure the servers: no identity") {
		t.Fatalf("New with a failing securer: %v", err)
	}
}
