package shoalfx_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"go.uber.org/fx"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/shoalmesh/shoal/triple"

	"github.com/shoalmesh/shoal/sdk/app"
	"github.com/shoalmesh/shoal/sdk/config"
	"github.com/shoalmesh/shoal/sdk/shoalfx"
	"github.com/shoalmesh/shoal/sdk/tri"
)

// A whole application wired by fx: configuration, a Triple server on a
// loopback port serving the built-in health service, its registration in
// the file registry, and a reference to it. Real applications add their
// exports to shoalfx.Triple and usually load shoal.yaml.
func Example() {
	dir, _ := os.MkdirTemp("", "shoalfx")
	defer os.RemoveAll(dir)
	var a *app.App
	fxApp := fx.New(
		shoalfx.Module,
		shoalfx.ConfigOptions(config.WithoutFile(), config.WithEnv(noEnv),
			config.WithApplicationName("health-demo"),
			config.WithRegistry(config.Registry{Name: "local", Kind: "file", Address: filepath.Join(dir, "registry.yaml")}),
			config.WithProtocol(config.Protocol{Host: "127.0.0.1", Port: 0}),
			config.WithService(config.Service{Interface: "grpc.health.v1.Health"}),
			config.WithReference(config.Reference{Name: "health", Interface: "grpc.health.v1.Health"})),
		shoalfx.Triple(nil, nil, triple.WithLogger(quiet)),
		fx.Supply(quiet),
		fx.Populate(&a),
		fx.NopLogger,
	)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := fxApp.Start(ctx); err != nil {
		fmt.Println(err)
		return
	}
	ref, err := a.Reference("health")
	if err != nil {
		fmt.Println(err)
		return
	}
	out := new(healthpb.HealthCheckResponse)
	err = tri.NewClient(ref).Invoke(ctx, "/grpc.health.v1.Health/Check", &healthpb.HealthCheckRequest{}, out)
	fmt.Println(out.GetStatus(), err)
	fmt.Println(fxApp.Stop(ctx))
	// Output:
	// SERVING <nil>
	// <nil>
}
