package echotest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/shoalmesh/shoal/observability/internal/httpget"
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
	return StartConsumerWithFilters(t, reg, nil, opts...)
}

// StartConsumerWithFilters is StartConsumer with client filters.
func StartConsumerWithFilters(t testing.TB, reg config.Registry, filters []filter.Client, opts ...triple.ClientOption) *tri.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cfg, err := config.Load(config.WithoutFile(), config.WithEnv(noEnv), config.WithRegistry(reg),
		config.WithApplicationName("frontend"),
		config.WithReference(config.Reference{Name: "echo", Interface: Service}))
	if err != nil {
		t.Fatal(err)
	}
	consumer, err := app.New(cfg, app.WithTransport(tri.NewTransport(opts...)), app.WithLogger(quiet), app.WithClientFilters(filters...))
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

// Unary calls Echo with msg and checks the answer.
func Unary(ctx context.Context, client *tri.Client, msg string) error {
	out := new(wrapperspb.StringValue)
	if err := client.Invoke(ctx, "/test.Echo/Echo", wrapperspb.String(msg), out); err != nil {
		return err
	}
	if out.GetValue() != msg {
		return fmt.Errorf("echo answered %q to %q", out.GetValue(), msg)
	}
	return nil
}

// Chat sends n messages on one Chat stream, reads the n answers and the
// end of the stream.
func Chat(ctx context.Context, client *tri.Client, n int) error {
	st, err := client.NewStream(ctx, &Desc.Streams[0], "/test.Echo/Chat")
	if err != nil {
		return err
	}
	for i := range n {
		if err := st.SendMsg(wrapperspb.String(fmt.Sprint(i))); err != nil {
			return err
		}
		if err := st.RecvMsg(new(wrapperspb.StringValue)); err != nil {
			return err
		}
	}
	if err := st.CloseSend(); err != nil {
		return err
	}
	if err := st.RecvMsg(new(wrapperspb.StringValue)); !errors.Is(err, io.EOF) {
		return fmt.Errorf("stream end: %w, want io.EOF", err)
	}
	return nil
}

// Get fetches url, failing t when the request fails, and returns the
// status code and body.
func Get(t testing.TB, url string) (int, string) {
	t.Helper()
	code, body, err := httpget.Get(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	return code, body
}
