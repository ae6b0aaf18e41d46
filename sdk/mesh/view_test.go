package mesh_test

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/shoalmesh/shoal/sdk/mesh"
)

// viewSnapshot is a canary: x-canary: true goes to v2, the rest 90/10, with
// a timeout, retries, a delay, label-selected subsets and an unhealthy v2
// endpoint.
func viewSnapshot(t *testing.T) *mesh.Snapshot {
	t.Helper()
	svc := "greet.GreetService"
	snap, err := mesh.NewSnapshot(mesh.Spec{
		Revision: "7",
		Services: []mesh.Service{{
			Name: svc,
			Endpoints: []mesh.Endpoint{
				{Address: "10.0.0.1:50051", Labels: map[string]string{"version": "v1"}, Health: mesh.HealthHealthy},
				{Address: "10.0.0.2:50051", Labels: map[string]string{"version": "v2"}, Health: mesh.HealthUnhealthy, Locality: mesh.Locality{Region: "eu", Zone: "a"}},
			},
			Policy: mesh.ClusterPolicy{
				LoadBalancer:   &mesh.LoadBalancer{Kind: mesh.LBLeastRequest},
				ConnectionPool: &mesh.ConnectionPool{MaxRequests: 64},
			},
			Subsets: []mesh.Subset{
				{Name: "v1", Labels: map[string]string{"version": "v1"}},
				{Name: "v2", Labels: map[string]string{"version": "v2"}},
			},
		}},
		Routes: []mesh.Route{
			{
				Name: "canary",
				Matches: []mesh.RouteMatch{{
					Path:    mesh.Prefix("/greet."),
					Headers: []mesh.HeaderMatch{{Name: "x-canary", Value: mesh.Exact("true").IgnoringCase()}, {Name: "x-debug", Invert: true}},
				}},
				Destinations: []mesh.WeightedDestination{{Destination: mesh.Destination{Service: svc, Subset: "v2"}}},
			},
			{
				Destinations: []mesh.WeightedDestination{
					{Destination: mesh.Destination{Service: svc, Subset: "v1"}, Weight: 90},
					{Destination: mesh.Destination{Service: svc, Subset: "v2"}, Weight: 10},
				},
				Policy: mesh.RoutePolicy{
					Timeout: 3 * time.Second,
					Retry:   &mesh.RetryPolicy{Attempts: 2, PerTryTimeout: time.Second, On: mustRetryOn(t, "unavailable")},
					Fault: &mesh.FaultPolicy{
						Delay: &mesh.FaultDelay{Fixed: 50 * time.Millisecond, Percentage: 5},
						Abort: &mesh.FaultAbort{HTTPStatus: 503, Percentage: 1},
					},
				},
			},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

func TestNewView(t *testing.T) {
	v := mesh.NewView(viewSnapshot(t))
	if v.Revision != "7" || len(v.Routes) != 2 || len(v.Services) != 1 {
		t.Fatalf("view %+v", v)
	}
	canary := v.Routes[0]
	if want := []string{`path prefix "/greet.", header x-canary exact "true" (ignoring case), header x-debug not present`}; !reflect.DeepEqual(canary.Matches, want) {
		t.Errorf("matches %q, want %q", canary.Matches, want)
	}
	if want := []mesh.DestinationView{{Service: "greet.GreetService", Subset: "v2", Weight: 100, Percent: 100}}; !reflect.DeepEqual(canary.Destinations, want) {
		t.Errorf("canary destinations %+v", canary.Destinations)
	}
	split := v.Routes[1]
	if want := []mesh.DestinationView{
		{Service: "greet.GreetService", Subset: "v1", Weight: 90, Percent: 90},
		{Service: "greet.GreetService", Subset: "v2", Weight: 10, Percent: 10},
	}; !reflect.DeepEqual(split.Destinations, want) || len(split.Matches) != 0 {
		t.Errorf("split %+v", split)
	}
	if split.Timeout != "3s" || !reflect.DeepEqual(split.Retry, &mesh.RetryView{Attempts: 2, PerTryTimeout: "1s", On: "unavailable"}) {
		t.Errorf("timeout %q retry %+v", split.Timeout, split.Retry)
	}
	if want := (&mesh.FaultView{Delay: "50ms", DelayPercent: 5, Abort: "HTTP 503", AbortPercent: 1}); !reflect.DeepEqual(split.Fault, want) {
		t.Errorf("fault %+v, want %+v", split.Fault, want)
	}
	s := v.Services[0]
	if s.LoadBalancer != "least_request" || s.MaxRequests != 64 || s.Outlier || s.TLS != "" {
		t.Errorf("service policy %+v", s)
	}
	// Label-selected subsets list the endpoints they select.
	got := map[string][]string{}
	for _, sub := range s.Subsets {
		for _, ep := range sub.Endpoints {
			got[sub.Name] = append(got[sub.Name], ep.Address+" "+ep.Health)
		}
	}
	if want := map[string][]string{"v1": {"10.0.0.1:50051 healthy"}, "v2": {"10.0.0.2:50051 unhealthy"}}; !reflect.DeepEqual(got, want) {
		t.Errorf("subsets %v, want %v", got, want)
	}
	if ep := s.Endpoints[1]; ep.Ready || ep.Locality != "eu/a/" || ep.Labels["version"] != "v2" || ep.Weight != 1 {
		t.Errorf("endpoint %+v", ep)
	}
}

// The view survives JSON unchanged, so an app's admin endpoint and
// `shoal show` compare the same values.
func TestViewJSONRoundTrip(t *testing.T) {
	v := mesh.NewView(viewSnapshot(t))
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var back mesh.View
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(&back, v) {
		t.Errorf("after JSON:\n%+v\nwant\n%+v", back, *v)
	}
}

func TestNewViewNil(t *testing.T) {
	v := mesh.NewView(nil)
	b, err := json.Marshal(v)
	if err != nil || string(b) != `{"routes":[],"services":[]}` {
		t.Errorf("nil snapshot: %s %v", b, err)
	}
}

func mustRetryOn(t *testing.T, s string) mesh.RetryOn {
	t.Helper()
	on, err := mesh.ParseRetryOn(s)
	if err != nil {
		t.Fatal(err)
	}
	return on
}
