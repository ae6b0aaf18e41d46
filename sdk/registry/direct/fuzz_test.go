package direct_test

import (
	"context"
	"testing"

	"github.com/shoalmesh/shoal/sdk/mesh"
	"github.com/shoalmesh/shoal/sdk/registry"
	"github.com/shoalmesh/shoal/sdk/registry/direct"
)

// FuzzNew: arbitrary URLs never panic; an accepted URL yields an endpoint
// with a valid address for a consumer of any interface it serves.
func FuzzNew(f *testing.F) {
	f.Add("tri://127.0.0.1:1")
	f.Add("tri://[::1]:50051/greet.GreetService?version=1&group=g&weight=3&zone=a")
	f.Add("tri://h:1?weight=0")
	f.Fuzz(func(t *testing.T, raw string) {
		r, err := direct.New(raw)
		if err != nil {
			return
		}
		defer r.Close()
		w, err := r.Watch(context.Background(), registry.Key{Interface: "x", Group: registry.Any, Version: registry.Any})
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		s, err := w.Next(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		c, _ := s.Cluster(mesh.Destination{Service: "x"})
		for _, e := range c.Endpoints() {
			if err := mesh.ValidateAddress(e.Address); err != nil {
				t.Fatalf("accepted %q gave a bad address: %v", raw, err)
			}
		}
	})
}
