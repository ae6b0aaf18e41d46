package tri_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/shoalmesh/shoal/triple"

	"github.com/shoalmesh/shoal/sdk/app"
	"github.com/shoalmesh/shoal/sdk/config"
	"github.com/shoalmesh/shoal/sdk/tri"
)

// A provider on a port of your choosing (config.WithProtocol) and a consumer
// that calls that fixed address (Reference.URL), no registry lookup: the
// first examples of the sdk README.
func Example_chosenPortAndFixedAddress() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	port := freePort() // in a real program: a fixed port, such as 20880
	dir, _ := os.MkdirTemp("", "shoal-tri")
	defer os.RemoveAll(dir)
	// The provider registers there too; the consumer never reads it.
	registryFile := config.Registry{Name: "local", Kind: "file", Address: filepath.Join(dir, "registry.yaml")}

	// Serve test.Echo on 127.0.0.1:port.
	pcfg, err := config.Load(config.WithoutFile(), config.WithEnv(noEnv), config.WithRegistry(registryFile),
		config.WithProtocol(config.Protocol{Name: "tri", Host: "127.0.0.1", Port: port}),
		config.WithService(config.Service{Interface: "test.Echo"}))
	if err != nil {
		fmt.Println(err)
		return
	}
	servers := tri.NewServers([]tri.Export{{Desc: &echoDesc, Impl: &echo{name: "provider"}}}, triple.WithLogger(quiet))
	provider, err := startApp(ctx, pcfg, app.WithServers(servers.Factory()), app.WithServing(servers.SetServing), app.WithDrainDelay(0))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer func() { _ = provider.Stop(ctx) }()

	// Call it at its address.
	ccfg, err := config.Load(config.WithoutFile(), config.WithEnv(noEnv),
		config.WithReference(config.Reference{Name: "echo", Interface: "test.Echo", URL: fmt.Sprintf("tri://127.0.0.1:%d", port)}))
	if err != nil {
		fmt.Println(err)
		return
	}
	consumer, err := startApp(ctx, ccfg, app.WithTransport(tri.NewTransport()))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer func() { _ = consumer.Stop(ctx) }()
	ref, _ := consumer.Reference("echo")
	out := new(wrapperspb.StringValue)
	err = tri.NewClient(ref).Invoke(triple.AppendToOutgoingContext(ctx, "x-user", "gopher"), "/test.Echo/Echo", wrapperspb.String("hello"), out)
	fmt.Println(out.GetValue(), err)
	// Output: hello from provider for gopher <nil>
}

// startApp builds a quiet app from cfg and starts it.
func startApp(ctx context.Context, cfg *config.Config, opts ...app.Option) (*app.App, error) {
	a, err := app.New(cfg, append(opts, app.WithLogger(quiet))...)
	if err != nil {
		return nil, err
	}
	return a, a.Start(ctx)
}

// freePort asks the kernel for a free loopback port.
func freePort() int {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0
	}
	defer lis.Close()
	return lis.Addr().(*net.TCPAddr).Port
}
