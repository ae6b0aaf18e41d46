package mesh_test

import (
	"fmt"

	"github.com/shoalmesh/shoal/sdk/call"
	"github.com/shoalmesh/shoal/sdk/mesh"
)

// A 90/10 split between two versions, with users who send x-canary: 1
// always on v2 — what an Istio VirtualService plus DestinationRule says.
func ExampleNewSnapshot() {
	v1 := mesh.Destination{Service: "greet.GreetService", Subset: "v1"}
	v2 := mesh.Destination{Service: "greet.GreetService", Subset: "v2"}
	snap, err := mesh.NewSnapshot(mesh.Spec{
		Revision: "1",
		Services: []mesh.Service{{
			Name: "greet.GreetService",
			Endpoints: []mesh.Endpoint{
				{Address: "10.0.0.1:50051", Labels: map[string]string{"version": "v1"}},
				{Address: "10.0.0.2:50051", Labels: map[string]string{"version": "v2"}},
			},
			Subsets: []mesh.Subset{
				{Name: "v1", Labels: map[string]string{"version": "v1"}},
				{Name: "v2", Labels: map[string]string{"version": "v2"}},
			},
		}},
		Routes: []mesh.Route{
			{
				Name:         "canary-users",
				Matches:      []mesh.RouteMatch{{Headers: []mesh.HeaderMatch{{Name: "x-canary", Value: mesh.Exact("1")}}}},
				Destinations: []mesh.WeightedDestination{{Destination: v2}},
			},
			{
				Name:         "split",
				Destinations: []mesh.WeightedDestination{{Destination: v1, Weight: 90}, {Destination: v2, Weight: 10}},
			},
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	r := snap.Match("/greet.GreetService/Greet", call.Attachments{"x-canary": "1"}, nil)
	c, _ := snap.Cluster(r.Destinations[0].Destination)
	fmt.Println(r.Name, "->", c.Destination(), c.Ready()[0].Address)
	r = snap.Match("/greet.GreetService/Greet", nil, nil)
	fmt.Println(r.Name, "->", r.Destinations[0].Destination, r.Destinations[0].Weight, r.Destinations[1].Destination, r.Destinations[1].Weight)
	// Output:
	// canary-users -> greet.GreetService|v2 10.0.0.2:50051
	// split -> greet.GreetService|v1 90 greet.GreetService|v2 10
}
