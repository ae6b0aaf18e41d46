package xdsmesh_test

import (
	"context"
	"fmt"
	"log"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"

	"github.com/shoalmesh/shoal/registry-istio/bootstrap"
	"github.com/shoalmesh/shoal/registry-istio/xdsclient"
	"github.com/shoalmesh/shoal/registry-istio/xdsmesh"
	"github.com/shoalmesh/shoal/registry-istio/xdstest"
	"github.com/shoalmesh/shoal/sdk/registry"
)

// exampleTB lets a runnable example start an xdstest server.
type exampleTB struct{ cleanups []func() }

func (*exampleTB) Helper()                           {}
func (*exampleTB) Fatalf(format string, args ...any) { log.Fatalf(format, args...) }
func (t *exampleTB) Cleanup(f func())                { t.cleanups = append(t.cleanups, f) }

func (t *exampleTB) done() {
	for i := len(t.cleanups) - 1; i >= 0; i-- {
		t.cleanups[i]()
	}
}

// A consumer names an interface; istiod's view of the ServiceEntry host
// behind it (here an 80/20 split between two subsets) arrives as a mesh
// snapshot that router-mesh can execute.
func ExampleDiscovery_Watch() {
	tb := &exampleTB{}
	defer tb.done()
	const host = "greet.greetservice.default.shoal.local" // mapping of greet.GreetService
	v1, v2 := xdstest.ClusterName(host, "v1", 50051), xdstest.ClusterName(host, "v2", 50051)
	srv := xdstest.NewServer(tb) // stands in for istiod
	srv.Set(xdstest.Resources{
		Listeners: []*listenerv3.Listener{xdstest.Listener(host, 50051)},
		Routes: []*routev3.RouteConfiguration{xdstest.RouteConfig(host, 50051, xdstest.WeightedRoute("split", nil,
			xdstest.WeightedCluster{Name: v1, Weight: 80}, xdstest.WeightedCluster{Name: v2, Weight: 20}))},
		Clusters: []*clusterv3.Cluster{xdstest.Cluster(host, "v1", 50051), xdstest.Cluster(host, "v2", 50051)},
		Endpoints: []*endpointv3.ClusterLoadAssignment{
			xdstest.ClusterLoadAssignment(v1, xdstest.Endpoint{IP: "10.1.0.1", Port: 20000}),
			xdstest.ClusterLoadAssignment(v2, xdstest.Endpoint{IP: "10.2.0.1", Port: 20000}),
		},
	})

	c, err := xdsclient.New(&bootstrap.Config{
		ServerURI: srv.Address(),
		Node:      bootstrap.Identity{PodName: "consumer-0", Namespace: "default", IPs: []string{"10.0.0.7"}}.Node(),
	}, xdsclient.WithLogger(quiet))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	d := xdsmesh.NewDiscovery(c, xdsmesh.WithLogger(quiet))

	w, err := d.Watch(context.Background(), registry.Key{Interface: "greet.GreetService"})
	if err != nil {
		log.Fatal(err)
	}
	defer w.Close()
	snap, err := w.Next(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	r := snap.Match("/greet.GreetService/Greet", nil, nil)
	for _, dest := range r.Destinations {
		cl, _ := snap.Cluster(dest.Destination)
		fmt.Println(dest.Destination, dest.Weight, cl.Ready()[0].Address)
	}
	// Output:
	// greet.GreetService|v1 80 10.1.0.1:20000
	// greet.GreetService|v2 20 10.2.0.1:20000
}
