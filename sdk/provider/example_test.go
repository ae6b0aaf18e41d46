package provider_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/shoalmesh/shoal/sdk/call"
	"github.com/shoalmesh/shoal/sdk/consumer"
	"github.com/shoalmesh/shoal/sdk/internal/memnet"
	"github.com/shoalmesh/shoal/sdk/provider"
	"github.com/shoalmesh/shoal/sdk/registry"
	"github.com/shoalmesh/shoal/sdk/registry/file"
)

// A provider exports greet.GreetService on one server and registers it in
// the file registry, where a consumer finds it. memnet stands in for the
// Triple server and transport (package tri has the real ones).
func ExampleNew() {
	dir, _ := os.MkdirTemp("", "shoal-provider")
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	reg, err := file.New(filepath.Join(dir, "registry.yaml"), file.WithLogger(quiet))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer reg.Close()

	n := memnet.New()
	srv := n.NewServer("127.0.0.1", 50095)
	srv.Handle("/greet.GreetService/Greet", func(_ context.Context, _ *call.Info, req any) (any, error) {
		return "hello " + req.(string), nil
	})
	key := registry.Key{Interface: "greet.GreetService", Version: "1.0.0"}
	p, err := provider.New([]provider.Service{{Key: key}}, []provider.Server{srv}, []registry.Registrar{reg},
		provider.WithDrainDelay(0), provider.WithLogger(quiet))
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := p.Start(ctx); err != nil { // listen, then register
		fmt.Println(err)
		return
	}
	fmt.Println("ready:", p.Ready())

	ref, err := consumer.New(key, reg, n, consumer.WithLogger(quiet), consumer.WithWaitForReady())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ref.Close()
	var out string
	err = ref.Invoke(ctx, "Greet", "world", &out)
	fmt.Println(out, err)

	if err := p.Stop(ctx); err != nil { // unready, deregister, drain, shut down
		fmt.Println(err)
	}
	fmt.Println("ready:", p.Ready())
	// Output:
	// ready: true
	// hello world <nil>
	// ready: false
}
