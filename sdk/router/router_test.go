package router_test

import (
	"context"
	"strings"
	"testing"

	"github.com/shoalmesh/shoal/sdk/call"
	"github.com/shoalmesh/shoal/sdk/mesh"
	"github.com/shoalmesh/shoal/sdk/router"
)

func TestServiceRouter(t *testing.T) {
	snap, err := mesh.NewSnapshot(mesh.Spec{
		Revision: "7",
		Services: []mesh.Service{{Name: "greet.GreetService", Endpoints: []mesh.Endpoint{{Address: "127.0.0.1:1"}}, Subsets: []mesh.Subset{{Name: "v1"}}}},
		Routes:   []mesh.Route{{Destinations: []mesh.WeightedDestination{{Destination: mesh.Destination{Service: "greet.GreetService", Subset: "v1"}}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	r, err := router.Default.Get(router.ServiceName)
	if err != nil {
		t.Fatal(err)
	}
	d, err := r.Route(&call.Info{Service: "greet.GreetService", Method: "Greet"}, snap)
	if err != nil {
		t.Fatal(err)
	}
	if d.Cluster.Destination() != (mesh.Destination{Service: "greet.GreetService"}) || d.Route != nil || d.Policy() != nil {
		t.Errorf("decision = %+v, want the whole service and no route", d)
	}
	_, err = r.Route(&call.Info{Service: "other.Service"}, snap)
	if call.CodeOf(err) != call.Unavailable || !strings.Contains(err.Error(), `other.Service in snapshot "7"`) {
		t.Errorf("unknown service: %v", err)
	}
}

type nopEngine struct{ built string }

func (*nopEngine) Update(*mesh.Snapshot) error                              { return nil }
func (*nopEngine) Invoke(context.Context, *call.Info, router.Invoker) error { return nil }
func (*nopEngine) Close()                                                   {}

type plainBuilder struct{}

func (plainBuilder) Name() string         { return "plain" }
func (plainBuilder) Build() router.Engine { return &nopEngine{built: "Build"} }

type richBuilder struct{ plainBuilder }

func (richBuilder) BuildFor(o router.EngineOptions) router.Engine {
	return &nopEngine{built: "BuildFor " + o.Service + " " + o.SourceLabels["app"]}
}

func TestBuildEngine(t *testing.T) {
	o := router.EngineOptions{Service: "greet.GreetService", SourceLabels: map[string]string{"app": "web"}}
	if e := router.BuildEngine(plainBuilder{}, o).(*nopEngine); e.built != "Build" {
		t.Errorf("plain builder: %s", e.built)
	}
	if e := router.BuildEngine(richBuilder{}, o).(*nopEngine); e.built != "BuildFor greet.GreetService web" {
		t.Errorf("rich builder: %s", e.built)
	}
	engines := router.NewEngines(plainBuilder{})
	if _, err := engines.Get("mesh"); err == nil || !strings.Contains(err.Error(), `routing engine "mesh" is not registered; registered: plain`) {
		t.Errorf("unknown engine: %v", err)
	}
}
