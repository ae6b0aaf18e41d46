package router_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/shoalmesh/shoal/sdk/call"
	"github.com/shoalmesh/shoal/sdk/filter"
	"github.com/shoalmesh/shoal/sdk/mesh"
	"github.com/shoalmesh/shoal/sdk/router"
)

// TestServiceEngine: the trivial engine sends unary calls and streams to
// the called service's cluster, all subsets together, ignoring routes.
func TestServiceEngine(t *testing.T) {
	snap, err := mesh.NewSnapshot(mesh.Spec{
		Revision: "7",
		Services: []mesh.Service{{
			Name:      "greet.GreetService",
			Endpoints: []mesh.Endpoint{{Address: "127.0.0.1:1", Labels: map[string]string{"v": "1"}}, {Address: "127.0.0.1:2"}},
			Subsets:   []mesh.Subset{{Name: "v1", Labels: map[string]string{"v": "1"}}},
		}},
		Routes: []mesh.Route{{Destinations: []mesh.WeightedDestination{{Destination: mesh.Destination{Service: "greet.GreetService", Subset: "v1"}}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	b, err := router.DefaultEngines.Get(router.ServiceName)
	if err != nil {
		t.Fatal(err)
	}
	e := router.BuildEngine(b, router.EngineOptions{})
	defer e.Close()
	if err := e.Update(snap); err != nil {
		t.Fatal(err)
	}
	info := &call.Info{Service: "greet.GreetService", Method: "Greet"}
	seen := map[string]int{}
	for range 4 {
		err := e.Invoke(context.Background(), info, nil, nil, func(_ context.Context, ep *mesh.Endpoint, _ *call.Info, _, _ any) error {
			seen[ep.Address]++
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.NewStream(context.Background(), info, func(_ context.Context, ep *mesh.Endpoint, _ *call.Info) (filter.ClientStream, error) {
			seen[ep.Address]++
			return nil, errors.New("no stream here")
		}); err == nil {
			t.Fatal("a stream that failed to open opened")
		}
	}
	if seen["127.0.0.1:1"] == 0 || seen["127.0.0.1:2"] == 0 {
		t.Errorf("calls and streams by endpoint: %v, want both endpoints (the v1 route ignored)", seen)
	}
	err = e.Invoke(context.Background(), &call.Info{Service: "other.Service"}, nil, nil, nil)
	if call.CodeOf(err) != call.Unavailable || !strings.Contains(err.Error(), `other.Service in snapshot "7"`) {
		t.Errorf("unknown service: %v", err)
	}
}

type nopEngine struct{ built string }

func (*nopEngine) Update(*mesh.Snapshot) error                                        { return nil }
func (*nopEngine) Invoke(context.Context, *call.Info, any, any, router.Invoker) error { return nil }
func (*nopEngine) NewStream(context.Context, *call.Info, router.StreamOpener) (filter.ClientStream, error) {
	return nil, nil
}
func (*nopEngine) Close() {}

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
