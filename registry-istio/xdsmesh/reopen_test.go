package xdsmesh_test

import (
	"context"
	"testing"

	"github.com/shoalmesh/shoal/registry-istio/xdstest"
	"github.com/shoalmesh/shoal/sdk/mesh"
	"github.com/shoalmesh/shoal/sdk/registry"
)

// A watch closed and opened again for the same target (a consumer.Reference
// closed and reopened), and an app-level reference after a host reference
// to the same listener, get a routable snapshot. Both used to wait for an
// answer istiod never sends (the listener's name stayed subscribed), get
// "no discovery state yet" and then, after the resource timeout, an empty
// snapshot.
func TestDiscoveryWatchAgainGetsData(t *testing.T) {
	const appHost = "greeter.default.svc.cluster.local"
	srv := xdstest.NewServer(t)
	srv.Set(xdstest.Service(appHost, 50051, xdstest.Endpoint{IP: "10.4.0.1", Port: 20000}))
	d, _ := newDiscovery(t, srv)
	hostKey := registry.Key{Interface: "xds:///" + appHost + ":50051"}
	appKey := registry.Key{Interface: "greet.GreetService", ProvidedBy: "greeter"}
	for i, key := range []registry.Key{hostKey, hostKey, appKey, hostKey} {
		w, err := d.Watch(context.Background(), key)
		if err != nil {
			t.Fatal(err)
		}
		s := next(t, w)
		var ready int
		for _, svc := range s.Services() {
			if c, ok := s.Cluster(mesh.Destination{Service: svc.Name}); ok {
				ready += len(c.Ready())
			}
		}
		if ready != 1 {
			t.Fatalf("watch %d (%s): %d ready endpoints in %+v, want the provider", i+1, key, ready, s.Services())
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
