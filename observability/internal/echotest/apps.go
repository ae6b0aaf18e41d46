package echotest

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/shoalmesh/shoal/sdk/app"
	"github.com/shoalmesh/shoal/sdk/config"
	"github.com/shoalmesh/shoal/sdk/filter"
	"github.com/shoalmesh/shoal/sdk/tri"
	"github.com/shoalmesh/shoal/triple"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func noEnv(string) (string, bool) { return "", false }

// Registry returns a file registry in a temporary directory of t.
func Registry(t testing.TB) config.Registry {
	return FileRegistry(filepath.Join(t.TempDir(), "registry.yaml"))
}

// FileRegistry is the file registry at path.
func FileRegistry(path string) config.Registry {
	return config.Registry{Name: "local", Kind: "file", Address: path}
}

// StartProvider starts an application named "echo" serving the echo
// service on loopback Triple with the server filters given, registered in
// reg. The caller stops it.
func StartProvider(reg config.Registry, filters ...filter.Server) (*app.App, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cfg, err := config.Load(config.WithoutFile(), config.WithEnv(noEnv), config.WithRegistry(reg),
		config.WithApplicationName("echo"),
		config.WithProtocol(config.Protocol{Host: "127.0.0.1", Port: 0}),
		config.WithService(config.Service{Interface: Service}))
	if err != nil {
		return nil, err
	}
	servers := tri.NewServers([]tri.Export{{Desc: &Desc, Impl: Impl{}}}, triple.WithLogger(quiet))
	provider, err := app.New(cfg, app.WithServers(servers.Factory()), app.WithServing(servers.SetServing),
		app.WithLogger(quiet), app.WithDrainDelay(0), app.WithServerFilters(filters...))
	if err != nil {
		return nil, err
	}
	return provider, provider.Start(ctx)
}

// StartProviderT is StartProvider failing t on error and stopping the
// provider when t ends.
func StartProviderT(t testing.TB, reg config.Registry, filters ...filter.Server) {
	t.Helper()
	p, err := StartProvider(reg, filters...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Stop(context.Background()) })
}

// StartConsumer starts an application named "frontend" with a reference
// "echo" to the echo service found in reg, over a Triple transport with
// the client options given, and returns a client for it. The consumer
// stops when t ends.
func StartConsumer(t testing.TB, reg config.Registry, opts ...triple.ClientOption) *tri.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cfg, err := config.Load(config.WithoutFile(), config.WithEnv(noEnv), config.WithRegistry(reg),
		config.WithApplicationName("frontend"),
		config.WithReference(config.Reference{Name: "echo", Interface: Service}))
	if err != nil {
		t.Fatal(err)
	}
	consumer, err := app.New(cfg, app.WithTransport(tri.NewTransport(opts...)), app.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	if err := consumer.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = consumer.Stop(context.Background()) })
	ref, err := consumer.Reference("echo")
	if err != nil {
		t.Fatal(err)
	}
	if err := ref.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	return tri.NewClient(ref)
}
