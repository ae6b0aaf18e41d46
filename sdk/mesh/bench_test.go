package mesh_test

import (
	"fmt"
	"testing"

	"github.com/shoalmesh/shoal/sdk/call"
	"github.com/shoalmesh/shoal/sdk/mesh"
)

// BenchmarkMatch finds the first matching route of ten: nine each test the
// path and three headers, and the call fails each on its third header; the
// tenth matches every call.
func BenchmarkMatch(b *testing.B) {
	dest := []mesh.WeightedDestination{{Destination: mesh.Destination{Service: "s"}}}
	spec := mesh.Spec{Services: []mesh.Service{{Name: "s", Endpoints: []mesh.Endpoint{{Address: "10.0.0.1:1"}}}}}
	for i := range 9 {
		spec.Routes = append(spec.Routes, mesh.Route{
			Matches: []mesh.RouteMatch{{
				Path: mesh.Prefix("/greet.GreetService/"),
				Headers: []mesh.HeaderMatch{
					{Name: "x-tenant", Value: mesh.Exact("blue")},
					{Name: "x-user", Value: mesh.Prefix("user-")},
					{Name: "x-route", Value: mesh.Exact(fmt.Sprintf("route-%d", i))},
				},
			}},
			Destinations: dest,
		})
	}
	spec.Routes = append(spec.Routes, mesh.Route{Name: "last", Destinations: dest})
	snap, err := mesh.NewSnapshot(spec)
	if err != nil {
		b.Fatal(err)
	}
	a := call.Attachments{"x-tenant": "blue", "x-user": "user-7", "x-route": "none"}
	b.ReportAllocs()
	for b.Loop() {
		if rt := snap.Match("/greet.GreetService/Greet", a, nil); rt == nil || rt.Name != "last" {
			b.Fatal("wrong route")
		}
	}
}
