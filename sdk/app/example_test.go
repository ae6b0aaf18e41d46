package app_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/shoalmesh/shoal/sdk/app"
	"github.com/shoalmesh/shoal/sdk/call"
	"github.com/shoalmesh/shoal/sdk/config"
	"github.com/shoalmesh/shoal/sdk/filter"
	"github.com/shoalmesh/shoal/sdk/internal/memnet"
	"github.com/shoalmesh/shoal/sdk/provider"
)

// The application of shoalfx's tests, with plain constructors: a provider
// and a consumer of greet.GreetService in one process, found through the
// file registry. (memnet stands in for the Triple transport and server.)
func ExampleNew() {
	dir, _ := os.MkdirTemp("", "shoal-app")
	defer os.RemoveAll(dir)
	cfg, err := config.Load(
		config.WithoutFile(),
		config.WithEnv(func(string) (string, bool) { return "", false }),
		config.WithApplicationName("greeter"),
		config.WithRegistry(config.Registry{Name: "local", Kind: "file", Address: filepath.Join(dir, "registry.yaml")}),
		config.WithProtocol(config.Protocol{Host: "127.0.0.1", Port: 50081}),
		config.WithService(config.Service{Interface: "greet.GreetService"}),
		config.WithReference(config.Reference{Name: "greeter", Interface: "greet.GreetService"}),
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	n := memnet.New()
	servers := func(p config.Protocol, _ *filter.ServerChain) (provider.Server, error) {
		s := n.NewServer(p.Host, p.Port)
		s.Handle("/greet.GreetService/Greet", func(_ context.Context, _ *call.Info, req any) (any, error) {
			return "hello " + req.(string), nil
		})
		return s, nil
	}
	auth := filter.Client{Name: "auth", Order: 10, Unary: func(ctx context.Context, info *call.Info, req, resp any, next filter.UnaryInvoker) error {
		info.Attachments = info.Attachments.Clone().Set("authorization", "Bearer t")
		return next(ctx, info, req, resp)
	}}
	a, err := app.New(cfg, app.WithTransport(n), app.WithServers(servers), app.WithClientFilters(auth),
		app.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))), app.WithDrainDelay(0))
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := a.Start(ctx); err != nil {
		fmt.Println(err)
		return
	}
	defer func() { _ = a.Stop(ctx) }()

	ref, _ := a.Reference("greeter")
	var out string
	err = ref.Invoke(ctx, "Greet", "world", &out)
	fmt.Println(out, err)
	// Output: hello world <nil>
}
