package tri_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/shoalmesh/shoal/triple"

	"github.com/shoalmesh/shoal/sdk/app"
	"github.com/shoalmesh/shoal/sdk/config"
	"github.com/shoalmesh/shoal/sdk/tri"
)

// A provider and a consumer over loopback Triple, found through the file
// registry: the helloworld of Shoal with no control plane. Real programs
// use generated descriptors and clients (greettriple) and usually config's
// defaults: no registry path, port 50051.
func ExampleNewClient() {
	dir, _ := os.MkdirTemp("", "shoal-tri")
	defer os.RemoveAll(dir)
	registryFile := config.Registry{Name: "local", Kind: "file", Address: filepath.Join(dir, "registry.yaml")}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// Provider.
	pcfg, _ := config.Load(config.WithoutFile(), config.WithEnv(noEnv), config.WithRegistry(registryFile),
		config.WithProtocol(config.Protocol{Host: "127.0.0.1", Port: 0}),
		config.WithService(config.Service{Interface: "test.Echo"}))
	servers := tri.NewServers([]tri.Export{{Desc: &echoDesc, Impl: &echo{name: "provider"}}}, triple.WithLogger(quiet))
	provider, err := app.New(pcfg, app.WithServers(servers.Factory()), app.WithServing(servers.SetServing), app.WithLogger(quiet), app.WithDrainDelay(0))
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := provider.Start(ctx); err != nil {
		fmt.Println(err)
		return
	}
	defer func() { _ = provider.Stop(ctx) }()

	// Consumer.
	ccfg, _ := config.Load(config.WithoutFile(), config.WithEnv(noEnv), config.WithRegistry(registryFile),
		config.WithReference(config.Reference{Name: "echo", Interface: "test.Echo"}))
	consumer, err := app.New(ccfg, app.WithTransport(tri.NewTransport()), app.WithLogger(quiet))
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := consumer.Start(ctx); err != nil {
		fmt.Println(err)
		return
	}
	defer func() { _ = consumer.Stop(ctx) }()
	ref, _ := consumer.Reference("echo")
	client := tri.NewClient(ref) // a triple.Invoker: pass it to a generated New...Client

	out := new(wrapperspb.StringValue)
	err = client.Invoke(triple.AppendToOutgoingContext(ctx, "x-user", "gopher"), "/test.Echo/Echo", wrapperspb.String("hello"), out)
	fmt.Println(out.GetValue(), err)
	// Output: hello from provider for gopher <nil>
}
