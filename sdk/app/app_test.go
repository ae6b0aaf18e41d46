package app_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/shoalmesh/shoal/sdk/app"
	"github.com/shoalmesh/shoal/sdk/call"
	"github.com/shoalmesh/shoal/sdk/config"
	"github.com/shoalmesh/shoal/sdk/filter"
	"github.com/shoalmesh/shoal/sdk/internal/memnet"
	"github.com/shoalmesh/shoal/sdk/mesh"
	"github.com/shoalmesh/shoal/sdk/observer/observertest"
	"github.com/shoalmesh/shoal/sdk/provider"
	"github.com/shoalmesh/shoal/sdk/registry"
	"github.com/shoalmesh/shoal/sdk/router"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func noEnv(string) (string, bool) { return "", false }

func servers(n *memnet.Net) app.ServerFactory {
	return func(p config.Protocol, _ *filter.ServerChain) (provider.Server, error) {
		s := n.NewServer("127.0.0.1", p.Port)
		s.Handle("/greet.GreetService/Greet", func(_ context.Context, info *call.Info, req any) (any, error) {
			return "hello " + req.(string) + " from " + info.Attachments["x-client"], nil
		})
		return s, nil
	}
}

func TestProviderAndConsumerInOneApp(t *testing.T) {
	reg := filepath.Join(t.TempDir(), "registry.yaml")
	cfg, err := config.Load(config.WithEnv(noEnv), config.WithYAML("shoal.yaml", []byte(`
application: {name: greeter}
registries: [{name: local, kind: file, address: `+reg+`}]
protocols: [{name: tri, port: 50061, host: 127.0.0.1}]
services: [{interface: greet.GreetService, version: 1.0.0}]
references:
  - {name: greeter, interface: greet.GreetService, version: 1.0.0, timeout: 2s}
  - {name: byApp, interface: greet.GreetService, version: 1.0.0, providedBy: greeter}
filters: {client: [log, stamp], server: [log]}
`)))
	if err != nil {
		t.Fatal(err)
	}
	filters := filter.NewRegistry()
	_ = filters.RegisterClient(filter.Client{Name: "stamp", Unary: func(ctx context.Context, info *call.Info, req, resp any, next filter.UnaryInvoker) error {
		info.Attachments = info.Attachments.Clone().Set("x-client", "stamped")
		return next(ctx, info, req, resp)
	}})
	n := memnet.New()
	a, err := app.New(cfg, app.WithLogger(quiet), app.WithTransport(n), app.WithServers(servers(n)), app.WithFilters(filters), app.WithDrainDelay(10*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Reference("greeter"); err == nil || !strings.Contains(err.Error(), "not started") {
		t.Errorf("Reference before Start: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if !a.Ready() {
		t.Error("not ready after Start")
	}
	ref, err := a.Reference("greeter")
	if err != nil {
		t.Fatal(err)
	}
	var out string
	if err := ref.Invoke(ctx, "Greet", "alice", &out); err != nil || out != "hello alice from stamped" {
		t.Fatalf("call: %q, %v", out, err)
	}
	// An app-level reference carries providedBy in its key; the file
	// registry ignores it and finds the interface's providers as usual.
	byApp, err := a.Reference("byApp")
	if err != nil {
		t.Fatal(err)
	}
	if got := byApp.Key(); got.ProvidedBy != "greeter" || got.Interface != "greet.GreetService" {
		t.Errorf("byApp key = %+v", got)
	}
	if err := byApp.Invoke(ctx, "Greet", "carol", &out); err != nil || out != "hello carol from stamped" {
		t.Fatalf("call by app-level reference: %q, %v", out, err)
	}
	if _, err := a.Reference("nope"); err == nil || !strings.Contains(err.Error(), "configured: greeter, byApp") {
		t.Errorf("unknown reference: %v", err)
	}
	if err := a.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if a.Ready() {
		t.Error("ready after Stop")
	}
}

func TestNewReportsMissingPieces(t *testing.T) {
	cfg, err := config.Load(config.WithEnv(noEnv), config.WithYAML("shoal.yaml", []byte(`
registries: [{name: zk, kind: zookeeper, address: x}]
services: [{interface: a.A}]
references: [{interface: b.B, registry: zk, balancer: fastest, router: mesh}]
filters: {client: [auth], server: [metrics]}
`)))
	if err != nil {
		t.Fatal(err)
	}
	_, err = app.New(cfg, app.WithLogger(quiet))
	for _, want := range []string{
		`app: filters.client: filter: client[0]: client filter "auth" is not registered; registered: log`,
		`app: filters.server: filter: server[0]: server filter "metrics" is not registered; registered: log`,
		`app: references[0].balancer: balancer "fastest" is not registered; registered: least_request, random, ring_hash, round_robin`,
		`app: references[0].router: routing engine "mesh" is not registered; registered: service`,
		"there is no transport",
		"there is no server factory",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error:\n%v\nwant: %s", err, want)
		}
	}
	cfg.Filters = config.Filters{}
	cfg.References = nil
	cfg.Services = nil
	_, err = app.New(cfg, app.WithLogger(quiet))
	if err == nil || !strings.Contains(err.Error(), `app: registries[0].kind: registry kind "zookeeper" is not registered; registered: direct, file`) {
		t.Errorf("unknown registry kind: %v", err)
	}
}

// countingEngine sends each call to the first ready endpoint of the called
// service and counts the calls it ran.
type countingEngine struct {
	snap  atomic.Pointer[mesh.Snapshot]
	calls *atomic.Int64
}

func (e *countingEngine) Update(s *mesh.Snapshot) error { e.snap.Store(s); return nil }

func (e *countingEngine) Invoke(ctx context.Context, info *call.Info, req, resp any, invoke router.Invoker) error {
	e.calls.Add(1)
	c, ok := e.snap.Load().Cluster(mesh.Destination{Service: info.Service})
	if !ok || len(c.Ready()) == 0 {
		return call.Errorf(call.Unavailable, "no endpoint")
	}
	return invoke(ctx, c.Ready()[0], info, req, resp)
}

func (e *countingEngine) NewStream(context.Context, *call.Info, router.StreamOpener) (filter.ClientStream, error) {
	return nil, call.Errorf(call.Unimplemented, "no streams in this test engine")
}

func (e *countingEngine) Close() {}

type engineBuilder struct {
	calls *atomic.Int64
	got   *router.EngineOptions
}

func (engineBuilder) Name() string { return "mesh" }

func (b engineBuilder) Build() router.Engine { return &countingEngine{calls: b.calls} }

func (b engineBuilder) BuildFor(o router.EngineOptions) router.Engine {
	*b.got = o
	return b.Build()
}

func TestReferenceRoutedByAnEngine(t *testing.T) {
	reg := filepath.Join(t.TempDir(), "registry.yaml")
	cfg, err := config.Load(config.WithEnv(noEnv), config.WithYAML("shoal.yaml", []byte(`
application: {labels: {app: web}}
registries: [{name: local, kind: file, address: `+reg+`}]
protocols: [{port: 50062, host: 127.0.0.1}]
services: [{interface: greet.GreetService}]
references: [{name: greeter, interface: greet.GreetService, router: mesh}]
`)))
	if err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int64
	var built router.EngineOptions
	n := memnet.New()
	rec := observertest.NewRecorder()
	a, err := app.New(cfg, app.WithLogger(quiet), app.WithTransport(n), app.WithServers(servers(n)),
		app.WithEngines(router.NewEngines(engineBuilder{&calls, &built})), app.WithDrainDelay(0), app.WithObserver(rec))
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
	if err := ref.Invoke(ctx, "Greet", "bob", &out); err != nil || out != "hello bob from " || calls.Load() != 1 {
		t.Fatalf("call: %q, %v, engine ran %d calls", out, err, calls.Load())
	}
	if built.Service != "greet.GreetService" || built.SourceLabels["app"] != "web" || built.Logger == nil || built.Strategy == nil || built.Balancer == nil {
		t.Errorf("engine built with %+v", built)
	}
	// WithObserver reaches the engine and the reference.
	if built.Observer != rec {
		t.Errorf("engine's observer = %v, want the app's", built.Observer)
	}
	if ready, total, ok := rec.EndpointsOf("greet.GreetService"); !ok || ready != 1 || total != 1 {
		t.Errorf("reference reported ready %d of %d endpoints (reported: %v), want 1 of 1", ready, total, ok)
	}
}

func TestEmbeddedDefaultAdvertisesLoopback(t *testing.T) {
	for _, tt := range []struct {
		name, extra, want string
	}{
		{"file registries only", "", "127.0.0.1"},
		{"explicit advertiseHost", "    advertiseHost: 10.9.8.7\n", "10.9.8.7"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			reg := filepath.Join(t.TempDir(), "registry.yaml")
			cfg, err := config.Load(config.WithEnv(noEnv), config.WithYAML("shoal.yaml", []byte(
				"registries: [{name: local, kind: file, address: "+reg+"}]\nprotocols:\n  - port: 0\n"+tt.extra+"services: [{interface: greet.GreetService}]\n")))
			if err != nil {
				t.Fatal(err)
			}
			n := memnet.New()
			a, err := app.New(cfg, app.WithLogger(quiet), app.WithServers(func(p config.Protocol, _ *filter.ServerChain) (provider.Server, error) {
				return n.NewServer("0.0.0.0", p.Port), nil // listens on all interfaces
			}), app.WithDrainDelay(0))
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := a.Start(ctx); err != nil {
				t.Fatal(err)
			}
			defer func() { _ = a.Stop(ctx) }()
			r, _ := a.Registry("local")
			w, _ := r.Watch(ctx, registry.Key{Interface: "greet.GreetService"})
			defer w.Close()
			snap, err := w.Next(ctx)
			if err != nil {
				t.Fatal(err)
			}
			c, _ := snap.Cluster(mesh.Destination{Service: "greet.GreetService"})
			if len(c.Ready()) != 1 || !strings.HasPrefix(c.Ready()[0].Address, tt.want+":") {
				t.Errorf("registered %v, want host %s", c.Ready(), tt.want)
			}
		})
	}
}

// MeshView shows each started reference's snapshot, as JSON an admin
// endpoint serves and `shoal show --app` reads back.
func TestMeshView(t *testing.T) {
	reg := filepath.Join(t.TempDir(), "registry.yaml")
	if err := os.WriteFile(reg, []byte(`
services:
  greet.GreetService:
    instances: [{address: "127.0.0.1:50071", labels: {version: v1}}]
    subsets: [{name: v1, labels: {version: v1}}]
`), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(config.WithEnv(noEnv), config.WithYAML("shoal.yaml", []byte(`
application: {name: caller}
registries: [{name: local, kind: file, address: `+reg+`}]
references:
  - {name: greeter, interface: greet.GreetService}
  - {name: other, interface: other.OtherService, url: "tri://127.0.0.1:50072"}
`)))
	if err != nil {
		t.Fatal(err)
	}
	a, err := app.New(cfg, app.WithLogger(quiet), app.WithTransport(memnet.New()))
	if err != nil {
		t.Fatal(err)
	}
	if got := a.MeshView(""); len(got.References) != 0 {
		t.Errorf("before Start: %+v", got)
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
	if err := ref.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(a.MeshView(""))
	if err != nil {
		t.Fatal(err)
	}
	var got app.MeshView
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if len(got.References) != 2 || got.References[0].Name != "greeter" || got.References[1].Name != "other" {
		t.Fatalf("references %s", b)
	}
	g := got.References[0]
	if g.Interface != "greet.GreetService" || g.Registry != "local (file)" || !g.Ready {
		t.Errorf("greeter %+v", g)
	}
	if want := mesh.NewView(ref.Snapshot()); !reflect.DeepEqual(g.View, want) {
		t.Errorf("view after JSON %+v, want %+v", g.View, want)
	}
	if s := g.View.Services; len(s) != 1 || len(s[0].Subsets) != 1 || len(s[0].Subsets[0].Endpoints) != 1 || s[0].Subsets[0].Endpoints[0].Address != "127.0.0.1:50071" {
		t.Errorf("services %+v", s)
	}
	if got.References[1].Registry != "direct" {
		t.Errorf("url reference %+v", got.References[1])
	}
	if only := a.MeshView("other.OtherService"); len(only.References) != 1 || only.References[0].Name != "other" {
		t.Errorf("by interface: %+v", only)
	}
}
