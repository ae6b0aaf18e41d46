package xdsmesh_test

import (
	"strings"
	"testing"
	"time"

	"github.com/shoalmesh/shoal/registry-istio/xdsmesh"
	"github.com/shoalmesh/shoal/registry-istio/xdsresource"
	"github.com/shoalmesh/shoal/sdk/call"
	"github.com/shoalmesh/shoal/sdk/mesh"
)

const (
	host   = "greeter.default.svc.cluster.local"
	target = host + ":20000"
)

var (
	v1 = xdsresource.WeightedCluster{Name: "outbound|20000|v1|" + host, Weight: 80}
	v2 = xdsresource.WeightedCluster{Name: "outbound|20000|v2|" + host, Weight: 20}
)

func TestParseClusterName(t *testing.T) {
	tests := []struct {
		in   string
		want mesh.Destination
	}{
		{"outbound|20000||" + host, mesh.Destination{Service: target}},
		{"outbound|20000|v1|" + host, mesh.Destination{Service: target, Subset: "v1"}},
		{"outbound|80|v1|fd00::1", mesh.Destination{Service: "[fd00::1]:80", Subset: "v1"}},
		{"inbound|80||x", mesh.Destination{Service: "inbound|80||x"}},
		{"outbound|http|v1|x", mesh.Destination{Service: "outbound|http|v1|x"}},
		{"plain", mesh.Destination{Service: "plain"}},
	}
	for _, tt := range tests {
		if got := xdsmesh.ParseClusterName(tt.in); got != tt.want {
			t.Errorf("ParseClusterName(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

func TestVirtualHostFor(t *testing.T) {
	rc := &xdsresource.RouteConfig{Name: "r", VirtualHosts: []xdsresource.VirtualHost{
		{Name: "any", Domains: []string{"*"}},
		{Name: "suffix", Domains: []string{"*.svc.cluster.local"}},
		{Name: "exact", Domains: []string{host, target}},
	}}
	for _, tt := range []struct{ target, want string }{
		{target, "exact"},
		{"other.default.svc.cluster.local:80", "suffix"},
		{"example.com:443", "any"},
	} {
		vh, err := xdsmesh.VirtualHostFor(rc, tt.target)
		if err != nil || vh.Name != tt.want {
			t.Errorf("VirtualHostFor(%s) = %v, %v; want %s", tt.target, vh, err, tt.want)
		}
	}
	if _, err := xdsmesh.VirtualHostFor(&xdsresource.RouteConfig{Name: "r", VirtualHosts: []xdsresource.VirtualHost{{Domains: []string{"a"}}}}, target); err == nil {
		t.Error("no error without a matching virtual host")
	}
}

func route(name string, clusters ...xdsresource.WeightedCluster) xdsresource.Route {
	r := xdsresource.Route{Name: name, Match: xdsresource.RouteMatch{PathKind: xdsresource.PathPrefix, Path: "/", CaseSensitive: true}, WeightedClusters: clusters}
	for _, c := range clusters {
		r.TotalWeight += uint64(c.Weight)
	}
	return r
}

func input(routes ...xdsresource.Route) xdsmesh.Input {
	cl := func(name string) *xdsresource.Cluster {
		return &xdsresource.Cluster{Name: name, EDSServiceName: name, MaxRequests: 1024}
	}
	return xdsmesh.Input{
		Target:   target,
		Revision: "r1",
		Routes:   &xdsresource.RouteConfig{Name: "outbound|20000||" + host, VirtualHosts: []xdsresource.VirtualHost{{Domains: []string{target}, Routes: routes}}},
		Clusters: map[string]*xdsresource.Cluster{v1.Name: cl(v1.Name), v2.Name: cl(v2.Name)},
		Endpoints: map[string]*xdsresource.Endpoints{
			v1.Name: {ClusterName: v1.Name, Localities: []xdsresource.LocalityEndpoints{{
				Locality:  xdsresource.Locality{Region: "eu", Zone: "a"},
				Endpoints: []xdsresource.Endpoint{{Address: "10.0.0.1:20000", Weight: 2, Health: xdsresource.HealthHealthy, Labels: map[string]string{"version": "v1"}}},
			}}},
			v2.Name: {ClusterName: v2.Name, Localities: []xdsresource.LocalityEndpoints{{
				Priority:  1,
				Endpoints: []xdsresource.Endpoint{{Address: "10.0.0.2:20000", Weight: 1, Health: xdsresource.HealthDraining}},
			}}},
		},
	}
}

func snapshot(t *testing.T, in xdsmesh.Input) *mesh.Snapshot {
	t.Helper()
	spec, err := xdsmesh.Translate(in)
	if err != nil {
		t.Fatal(err)
	}
	s, err := mesh.NewSnapshot(spec)
	if err != nil {
		t.Fatalf("the mesh model rejects the translation: %v", err)
	}
	return s
}

func TestTranslateSplitAndSubsets(t *testing.T) {
	in := input(route("split", v1, v2))
	s := snapshot(t, in)
	r := s.Match("/greet.GreetService/Greet", nil, nil)
	if r == nil || len(r.Destinations) != 2 ||
		r.Destinations[0].Destination != (mesh.Destination{Service: target, Subset: "v1"}) || r.Destinations[0].Weight != 80 || r.Destinations[1].Weight != 20 {
		t.Fatalf("route %+v", r)
	}
	c1, ok := s.Cluster(mesh.Destination{Service: target, Subset: "v1"})
	if !ok || len(c1.Ready()) != 1 {
		t.Fatalf("v1 cluster %v %v", c1, ok)
	}
	e := c1.Ready()[0]
	if e.Address != "10.0.0.1:20000" || e.Weight != 2 || e.Locality.Region != "eu" || e.Labels["version"] != "v1" || e.Health != mesh.HealthHealthy {
		t.Fatalf("endpoint %+v", e)
	}
	// The service behind the cluster, for telemetry; the xDS resource's
	// own labels are left as they were.
	if got := e.Labels[mesh.LabelService]; got != host {
		t.Errorf("endpoint label %s = %q, want %q", mesh.LabelService, got, host)
	}
	if _, ok := in.Endpoints[v1.Name].Localities[0].Endpoints[0].Labels[mesh.LabelService]; ok {
		t.Error("Translate wrote into the xDS resource's label map")
	}
	// The draining endpoint is known but not ready.
	c2, _ := s.Cluster(mesh.Destination{Service: target, Subset: "v2"})
	if len(c2.Endpoints()) != 1 || len(c2.Ready()) != 0 || c2.Endpoints()[0].Health != mesh.HealthDraining || c2.Endpoints()[0].Priority != 1 {
		t.Fatalf("v2 cluster %+v", c2.Endpoints())
	}
	// A subset never selects the other subsets' endpoints by labels.
	if c2.Endpoints()[0].Address != "10.0.0.2:20000" {
		t.Fatalf("v2 endpoints %+v", c2.Endpoints())
	}
}

func TestTranslateHealthValues(t *testing.T) {
	// The two enums share Envoy's order; the cast in translate relies on it.
	pairs := map[xdsresource.Health]mesh.HealthStatus{
		xdsresource.HealthUnknown: mesh.HealthUnknown, xdsresource.HealthHealthy: mesh.HealthHealthy,
		xdsresource.HealthUnhealthy: mesh.HealthUnhealthy, xdsresource.HealthDraining: mesh.HealthDraining,
		xdsresource.HealthTimeout: mesh.HealthTimeout, xdsresource.HealthDegraded: mesh.HealthDegraded,
	}
	for x, m := range pairs {
		if x.String() != strings.ToUpper(m.String()) {
			t.Errorf("%v vs %v", x, m)
		}
	}
}

func TestTranslatePolicies(t *testing.T) {
	grpcUnavailable := uint32(14)
	r := route("policies", v1)
	r.Match = xdsresource.RouteMatch{PathKind: xdsresource.PathPrefix, Path: "/greet.GreetService/", CaseSensitive: true, Headers: []xdsresource.HeaderMatch{
		{Name: "x-user", Kind: xdsresource.MatchExact, Value: "alice"},
		{Name: "x-debug", Kind: xdsresource.MatchPresent, Present: false},
	}}
	r.Timeout = 100 * time.Millisecond
	r.RetryPolicy = &xdsresource.RetryPolicy{RetryOn: []string{"connect-failure", "unavailable", "cancelled"}, NumRetries: 3, PerTryTimeout: 20 * time.Millisecond, BaseInterval: 25 * time.Millisecond, MaxInterval: 250 * time.Millisecond}
	r.Fault = &xdsresource.FaultPolicy{Delay: 200 * time.Millisecond, DelayPPM: 100_000, AbortGRPCCode: &grpcUnavailable, AbortPPM: 500_000}
	r.HashPolicies = []xdsresource.HashPolicy{{Header: "x-user"}}
	r.Mirrors = []xdsresource.MirrorPolicy{{Cluster: v2.Name, PPM: 250_000}}
	in := input(r)
	in.Clusters[v1.Name].LBPolicy = xdsresource.LBRingHash
	in.Clusters[v1.Name].RingHash = &xdsresource.RingHashConfig{MinRingSize: 64, MaxRingSize: 1024}
	in.Clusters[v1.Name].MaxRequests = 10
	in.Clusters[v1.Name].OutlierDetection = &xdsresource.OutlierDetection{Consecutive5xx: 3, Interval: time.Second, BaseEjectionTime: 30 * time.Second, MaxEjectionPercent: 50}
	s := snapshot(t, in)

	if s.Match("/greet.GreetService/Greet", call.Attachments{"x-user": "alice"}, nil) == nil {
		t.Fatal("matching call not routed")
	}
	if s.Match("/greet.GreetService/Greet", call.Attachments{"x-user": "alice", "x-debug": "1"}, nil) != nil {
		t.Fatal("x-debug must be absent")
	}
	if s.Match("/other.Service/Greet", call.Attachments{"x-user": "alice"}, nil) != nil {
		t.Fatal("path prefix ignored")
	}
	got := s.Routes()[0].Policy
	if got.Timeout != 100*time.Millisecond {
		t.Errorf("timeout %v", got.Timeout)
	}
	if rp := got.Retry; rp == nil || rp.Attempts != 3 || rp.PerTryTimeout != 20*time.Millisecond || !rp.On.Has(mesh.RetryConnectFailure) ||
		!rp.On.HasCode(call.Unavailable) || !rp.On.HasCode(call.Canceled) || rp.Backoff.Max != 250*time.Millisecond {
		t.Errorf("retry %+v", rp)
	}
	if f := got.Fault; f == nil || f.Delay.Fixed != 200*time.Millisecond || f.Delay.Percentage != 10 || f.Abort.Code != call.Unavailable || f.Abort.Percentage != 50 {
		t.Errorf("fault %+v", f)
	}
	if m := got.Mirrors; len(m) != 1 || m[0].Subset != "v2" || m[0].Percentage != 25 {
		t.Errorf("mirrors %+v", m)
	}
	c, _ := s.Cluster(mesh.Destination{Service: target, Subset: "v1"})
	p := c.Policy()
	if p.LoadBalancer.Kind != mesh.LBRingHash || p.LoadBalancer.ConsistentHash.Name != "x-user" || p.LoadBalancer.ConsistentHash.MinRingSize != 64 {
		t.Errorf("lb %+v %+v", p.LoadBalancer, p.LoadBalancer.ConsistentHash)
	}
	if p.ConnectionPool.MaxRequests != 10 || p.OutlierDetection.Consecutive5xxErrors != 3 || p.OutlierDetection.MaxEjectionPercent != 50 {
		t.Errorf("pool %+v outlier %+v", p.ConnectionPool, p.OutlierDetection)
	}
}

func TestTranslateRingHashWithoutKeyIsRandom(t *testing.T) {
	in := input(route("r", v1))
	in.Clusters[v1.Name].LBPolicy = xdsresource.LBRingHash
	in.Clusters[v1.Name].RingHash = &xdsresource.RingHashConfig{MinRingSize: 64, MaxRingSize: 1024}
	c, _ := snapshot(t, in).Cluster(mesh.Destination{Service: target, Subset: "v1"})
	if k := c.Policy().LoadBalancer.Kind; k != mesh.LBRandom {
		t.Fatalf("lb %v, want random (Envoy hashes a random number without a hash policy)", k)
	}
}

func TestTranslateMissingClusterIsLeftOut(t *testing.T) {
	in := input(route("split", v1, v2))
	delete(in.Clusters, v2.Name)
	s := snapshot(t, in)
	if _, ok := s.Cluster(mesh.Destination{Service: target, Subset: "v2"}); ok {
		t.Fatal("a cluster istiod does not know must be absent (UNAVAILABLE)")
	}
}

func TestTranslateRejects(t *testing.T) {
	frac := uint32(10)
	tests := []struct {
		name string
		edit func(*xdsresource.Route)
		want string
	}{
		{"redirect", func(r *xdsresource.Route) { r.Action = xdsresource.ActionUnsupported }, "only forwarding routes"},
		{"range header", func(r *xdsresource.Route) {
			r.Match.Headers = []xdsresource.HeaderMatch{{Name: "x-n", Kind: xdsresource.MatchRange, RangeStart: 1, RangeEnd: 2}}
		}, `header "x-n": range matches are not supported`},
		{"fraction", func(r *xdsresource.Route) { r.Match.FractionPPM = &frac }, "runtime_fraction"},
		{"abort with OK", func(r *xdsresource.Route) {
			ok := uint32(0)
			r.Fault = &xdsresource.FaultPolicy{AbortGRPCCode: &ok, AbortPPM: 1000}
		}, "gRPC status 0 (OK)"},
		{"unknown retry condition", func(r *xdsresource.Route) {
			r.RetryPolicy = &xdsresource.RetryPolicy{RetryOn: []string{"bogus"}, NumRetries: 1}
		}, `unknown condition "bogus"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := route("bad", v1)
			tt.edit(&r)
			_, err := xdsmesh.Translate(input(r))
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), `route 0 "bad"`) {
				t.Fatalf("err = %v, want %q naming the route", err, tt.want)
			}
		})
	}
}

// A route that needs query parameters can never match a gRPC or Triple
// call: it is left out, and the next route takes the calls.
func TestTranslateSkipsQueryParameterRoutes(t *testing.T) {
	q := route("by-query", v2)
	q.Match.QueryParameters = []string{"debug"}
	s := snapshot(t, input(q, route("rest", v1)))
	if len(s.Routes()) != 1 || s.Routes()[0].Name != "rest" {
		t.Fatalf("routes %+v", s.Routes())
	}
}
