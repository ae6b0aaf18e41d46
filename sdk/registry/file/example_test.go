package file_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/shoalmesh/shoal/sdk/mesh"
	"github.com/shoalmesh/shoal/sdk/registry"
	"github.com/shoalmesh/shoal/sdk/registry/file"
)

// A provider registers itself in the file; a consumer watching the same
// file sees it.
func ExampleNew() {
	dir, _ := os.MkdirTemp("", "shoal-example")
	defer os.RemoveAll(dir)
	reg, err := file.New(filepath.Join(dir, "registry.yaml"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer reg.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	key := registry.Key{Interface: "greet.GreetService", Version: "1.0.0"}
	_ = reg.Register(ctx, registry.Instance{Key: key, Address: "127.0.0.1:50051"})

	w, _ := reg.Watch(ctx, key)
	defer w.Close()
	snap, err := w.Next(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	c, _ := snap.Cluster(mesh.Destination{Service: key.Interface})
	fmt.Println(c.Ready()[0].Address)
	// Output: 127.0.0.1:50051
}
