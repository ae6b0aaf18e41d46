package mesh_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/shoalmesh/shoal/sdk/call"
	"github.com/shoalmesh/shoal/sdk/mesh"
)

func TestStringMatch(t *testing.T) {
	tests := []struct {
		m    mesh.StringMatch
		in   string
		want bool
	}{
		{mesh.StringMatch{}, "anything", true},
		{mesh.Exact("v1"), "v1", true},
		{mesh.Exact("v1"), "v10", false},
		{mesh.Prefix("/greet."), "/greet.GreetService/Greet", true},
		{mesh.Prefix("/greet."), "/other", false},
		{mesh.Suffix("/Greet"), "/greet.GreetService/Greet", true},
		{mesh.Suffix("/Greet"), "/greet.GreetService/GreetStream", false},
		{mesh.Contains("Service"), "/greet.GreetService/Greet", true},
		{mesh.MustRegex("v[0-9]"), "v1", true},
		{mesh.MustRegex("v[0-9]"), "v10", false}, // full match, as Envoy's safe_regex
		{mesh.MustRegex("v[0-9]"), "xv1", false},
		{mesh.MustRegex("a|b"), "b", true}, // alternation stays inside the anchors
		{mesh.Exact("/Greet").IgnoringCase(), "/GREET", true},
		{mesh.Prefix("/GREET").IgnoringCase(), "/greet/x", true},
		{mesh.MustRegex("v[0-9]").IgnoringCase(), "V2", true},
		{mesh.Exact("/Greet").IgnoringCase(), "/GREETS", false},
		{mesh.Suffix("/greet").IgnoringCase(), "/svc/GrEeT", true},
		{mesh.Suffix("/greet").IgnoringCase(), "/svc/GrEeTs", false},
		{mesh.Contains("Service").IgnoringCase(), "/greet.GREETSERVICE/Greet", true},
		{mesh.Contains("Service").IgnoringCase(), "/greet.Greet/Serv", false},
		{mesh.Prefix("/greet").IgnoringCase(), "/GR", false},
		{mesh.Exact("/ÄPFEL").IgnoringCase(), "/äpfel", true}, // non-ASCII folds as strings.ToLower does
		{mesh.Exact("/äpfel").IgnoringCase(), "/ÄPFEL", true},
		{mesh.Exact("/a").IgnoringCase(), "/\u00e0", false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/%s", tt.m, tt.in), func(t *testing.T) {
			if got := tt.m.Match(tt.in); got != tt.want {
				t.Errorf("%s.Match(%q) = %v, want %v", tt.m, tt.in, got, tt.want)
			}
		})
	}
	if _, err := mesh.Regex("("); err == nil || !strings.Contains(err.Error(), "RE2") {
		t.Errorf("Regex(\"(\") error = %v, want a compile error that points to RE2 syntax", err)
	}
}

func TestHeaderMatch(t *testing.T) {
	with := call.Attachments{"x-user": "alice"}
	tests := []struct {
		name string
		h    mesh.HeaderMatch
		a    call.Attachments
		want bool
	}{
		{"present", mesh.HeaderMatch{Name: "x-user"}, with, true},
		{"present absent", mesh.HeaderMatch{Name: "x-user"}, nil, false},
		{"name case-insensitive", mesh.HeaderMatch{Name: "X-User", Value: mesh.Exact("alice")}, with, true},
		{"exact mismatch", mesh.HeaderMatch{Name: "x-user", Value: mesh.Exact("bob")}, with, false},
		{"inverted mismatch", mesh.HeaderMatch{Name: "x-user", Value: mesh.Exact("bob"), Invert: true}, with, true},
		{"inverted value, header absent", mesh.HeaderMatch{Name: "x-user", Value: mesh.Exact("bob"), Invert: true}, nil, true},
		{"inverted presence = absent", mesh.HeaderMatch{Name: "x-user", Invert: true}, nil, true},
		{"inverted presence, present", mesh.HeaderMatch{Name: "x-user", Invert: true}, with, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.h.Matches(tt.a); got != tt.want {
				t.Errorf("Matches = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestRouteMatchingOrAndFirstWins(t *testing.T) {
	snap, err := mesh.NewSnapshot(mesh.Spec{
		Services: []mesh.Service{{Name: "greet.GreetService"}},
		Routes: []mesh.Route{
			{
				Name: "canary",
				Matches: []mesh.RouteMatch{
					// (path prefix AND header) OR source label
					{Path: mesh.Prefix("/greet.GreetService/"), Headers: []mesh.HeaderMatch{{Name: "x-canary", Value: mesh.Exact("1")}}},
					{SourceLabels: map[string]string{"app": "tester"}},
				},
				Destinations: []mesh.WeightedDestination{{Destination: mesh.Destination{Service: "greet.GreetService", Subset: "v2"}}},
			},
			{Name: "default", Destinations: []mesh.WeightedDestination{{Destination: mesh.Destination{Service: "greet.GreetService"}}}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		path   string
		a      call.Attachments
		source map[string]string
		want   string
	}{
		{"all conditions of first match", "/greet.GreetService/Greet", call.Attachments{"x-canary": "1"}, nil, "canary"},
		{"header missing", "/greet.GreetService/Greet", nil, nil, "default"},
		{"path mismatch", "/other.Service/Greet", call.Attachments{"x-canary": "1"}, nil, "default"},
		{"second match ORed", "/other.Service/Greet", nil, map[string]string{"app": "tester", "v": "1"}, "canary"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := snap.Match(tt.path, tt.a, tt.source)
			if r == nil || r.Name != tt.want {
				t.Fatalf("Match = %+v, want route %q", r, tt.want)
			}
		})
	}
	// A lone destination without weight gets the whole share.
	if w := snap.Routes()[1].Destinations[0].Weight; w != 100 {
		t.Errorf("single destination weight = %d, want 100", w)
	}
}

func TestParseRetryOn(t *testing.T) {
	r, err := mesh.ParseRetryOn("connect-failure, refused-stream,unavailable,cancelled,RESOURCE_EXHAUSTED,503")
	if err != nil {
		t.Fatal(err)
	}
	if !r.Has(mesh.RetryConnectFailure) || !r.Has(mesh.RetryRefusedStream) || !r.Has(mesh.RetryRetriableStatusCodes) {
		t.Errorf("conditions = %b, want connect-failure, refused-stream and retriable-status-codes", r.Conditions)
	}
	for _, c := range []call.Code{call.Unavailable, call.Canceled, call.ResourceExhausted} {
		if !r.HasCode(c) {
			t.Errorf("HasCode(%s) = false", c)
		}
	}
	if r.HasCode(call.Internal) {
		t.Error("HasCode(internal) = true, not listed")
	}
	if got, want := r.String(), "connect-failure,refused-stream,cancelled,resource-exhausted,unavailable,503"; got != want {
		t.Errorf("String = %q, want %q", got, want)
	}
	if !r.Retryable(call.Errorf(call.Unavailable, "down")) {
		t.Error("unavailable not retryable")
	}
	if r.Retryable(call.Errorf(call.InvalidArgument, "bad")) {
		t.Error("invalid-argument retryable")
	}
	if !r.Retryable(&call.Error{Code: call.Unknown, Connect: true}) {
		t.Error("connect failure not retryable under connect-failure")
	}
	if r.Retryable(nil) {
		t.Error("nil error retryable")
	}
	for _, bad := range []string{"5xxx", "not-found", "99", "unavailable,bogus"} {
		if _, err := mesh.ParseRetryOn(bad); err == nil || !strings.Contains(err.Error(), "unknown condition") {
			t.Errorf("ParseRetryOn(%q) error = %v, want unknown condition", bad, err)
		}
	}
}

func TestBackoffInterval(t *testing.T) {
	b := mesh.Backoff{}
	want := []time.Duration{25, 50, 100, 200, 250, 250}
	for n, w := range want {
		if got := b.Interval(uint32(n)); got != w*time.Millisecond {
			t.Errorf("default Interval(%d) = %s, want %s", n, got, w*time.Millisecond)
		}
	}
	b = mesh.Backoff{Base: time.Second, Max: 3 * time.Second}
	if got := b.Interval(5); got != 3*time.Second {
		t.Errorf("capped Interval = %s, want 3s", got)
	}
}

func TestSnapshotSubsetsAndPolicyOverride(t *testing.T) {
	rr := &mesh.LoadBalancer{Kind: mesh.LBRoundRobin}
	ring := &mesh.LoadBalancer{Kind: mesh.LBRingHash, ConsistentHash: &mesh.ConsistentHash{Source: mesh.HashHeader, Name: "x-user"}}
	pool := &mesh.ConnectionPool{MaxRequests: 10}
	spec := mesh.Spec{Services: []mesh.Service{{
		Name: "greet.GreetService",
		Endpoints: []mesh.Endpoint{
			{Address: "10.0.0.1:50051", Labels: map[string]string{"version": "v1"}},
			{Address: "10.0.0.2:50051", Labels: map[string]string{"version": "v2"}, Health: mesh.HealthUnhealthy},
			{Address: "10.0.0.3:50051", Labels: map[string]string{"version": "v2"}, Weight: 3},
		},
		Policy:  mesh.ClusterPolicy{LoadBalancer: rr, ConnectionPool: pool},
		Subsets: []mesh.Subset{{Name: "v2", Labels: map[string]string{"version": "v2"}, Policy: mesh.ClusterPolicy{LoadBalancer: ring}}},
	}}}
	snap, err := mesh.NewSnapshot(spec)
	if err != nil {
		t.Fatal(err)
	}
	all, ok := snap.Cluster(mesh.Destination{Service: "greet.GreetService"})
	if !ok || len(all.Endpoints()) != 3 || len(all.Ready()) != 2 {
		t.Fatalf("service cluster: ok=%v endpoints=%d ready=%d, want 3 endpoints, 2 ready", ok, len(all.Endpoints()), len(all.Ready()))
	}
	if all.Ready()[0].Weight != 1 {
		t.Errorf("weight 0 normalized to %d, want 1", all.Ready()[0].Weight)
	}
	v2, ok := snap.Cluster(mesh.Destination{Service: "greet.GreetService", Subset: "v2"})
	if !ok || len(v2.Endpoints()) != 2 || len(v2.Ready()) != 1 || v2.Ready()[0].Address != "10.0.0.3:50051" {
		t.Fatalf("subset v2: %+v", v2)
	}
	p := v2.Policy()
	if p.LoadBalancer.Kind != mesh.LBRingHash || p.ConnectionPool == nil || p.ConnectionPool.MaxRequests != 10 {
		t.Errorf("subset policy = %+v, want ring hash from the subset and the service's pool", p)
	}
	if _, ok := snap.Cluster(mesh.Destination{Service: "greet.GreetService", Subset: "v3"}); ok {
		t.Error("unknown subset resolved")
	}
	// The snapshot is a deep copy: editing the input changes nothing.
	spec.Services[0].Endpoints[0].Labels["version"] = "tampered"
	spec.Services[0].Endpoints[0].Address = "1.1.1.1:1"
	ring.ConsistentHash.Name = "tampered"
	if e := all.Endpoints()[0]; e.Address != "10.0.0.1:50051" || e.Labels["version"] != "v1" {
		t.Errorf("snapshot endpoint changed with its input: %+v", e)
	}
	if p.LoadBalancer.ConsistentHash.Name != "x-user" {
		t.Error("snapshot policy changed with its input")
	}
}

func TestSnapshotDegradedOnlyWhenNothingElse(t *testing.T) {
	snap, err := mesh.NewSnapshot(mesh.Spec{Services: []mesh.Service{{
		Name: "s",
		Endpoints: []mesh.Endpoint{
			{Address: "a:1", Health: mesh.HealthDegraded},
			{Address: "b:1", Health: mesh.HealthDraining},
		},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	c, _ := snap.Cluster(mesh.Destination{Service: "s"})
	if len(c.Ready()) != 1 || c.Ready()[0].Address != "a:1" {
		t.Errorf("ready = %v, want only the degraded endpoint a:1", c.Ready())
	}
}

func TestNewSnapshotRejectsBadInput(t *testing.T) {
	pct := func(p float64) *mesh.FaultPolicy {
		return &mesh.FaultPolicy{Abort: &mesh.FaultAbort{Code: call.Unavailable, Percentage: p}}
	}
	dest := []mesh.WeightedDestination{{Destination: mesh.Destination{Service: "s"}}}
	tests := []struct {
		name string
		spec mesh.Spec
		want string
	}{
		{"empty service name", mesh.Spec{Services: []mesh.Service{{}}}, "services[0].name: empty"},
		{"duplicate service", mesh.Spec{Services: []mesh.Service{{Name: "s"}, {Name: "s"}}}, `services[1].name: "s" appears twice`},
		{"no port", mesh.Spec{Services: []mesh.Service{{Name: "s", Endpoints: []mesh.Endpoint{{Address: "10.0.0.1"}}}}}, "services[0].endpoints[0].address"},
		{"bad port", mesh.Spec{Services: []mesh.Service{{Name: "s", Endpoints: []mesh.Endpoint{{Address: "h:0"}}}}}, "1 to 65535"},
		{"duplicate endpoint", mesh.Spec{Services: []mesh.Service{{Name: "s", Endpoints: []mesh.Endpoint{{Address: "h:1"}, {Address: "h:1"}}}}}, "services[0].endpoints[1].address"},
		{"bad health", mesh.Spec{Services: []mesh.Service{{Name: "s", Endpoints: []mesh.Endpoint{{Address: "h:1", Health: 42}}}}}, "health"},
		{"subset without name", mesh.Spec{Services: []mesh.Service{{Name: "s", Subsets: []mesh.Subset{{}}}}}, "services[0].subsets[0].name"},
		{"ring hash without key", mesh.Spec{Services: []mesh.Service{{Name: "s", Policy: mesh.ClusterPolicy{LoadBalancer: &mesh.LoadBalancer{Kind: mesh.LBRingHash}}}}}, "consistentHash: missing"},
		{"ring hash header without name", mesh.Spec{Services: []mesh.Service{{Name: "s", Policy: mesh.ClusterPolicy{LoadBalancer: &mesh.LoadBalancer{Kind: mesh.LBRingHash, ConsistentHash: &mesh.ConsistentHash{Source: mesh.HashHeader}}}}}}, "consistentHash.name"},
		{"ejection over 100", mesh.Spec{Services: []mesh.Service{{Name: "s", Policy: mesh.ClusterPolicy{OutlierDetection: &mesh.OutlierDetection{MaxEjectionPercent: 101}}}}}, "maxEjectionPercent"},
		{"locality weights", mesh.Spec{Services: []mesh.Service{{Name: "s", Policy: mesh.ClusterPolicy{LoadBalancer: &mesh.LoadBalancer{Locality: &mesh.LocalityLB{Distribute: []mesh.LocalityDistribute{{From: "eu/*", To: map[string]uint32{"eu/a/*": 60, "eu/b/*": 30}}}}}}}}}, "locality.distribute[0]: from \"eu/*\", weights sum to 90"},
		{"locality both", mesh.Spec{Services: []mesh.Service{{Name: "s", Policy: mesh.ClusterPolicy{LoadBalancer: &mesh.LoadBalancer{Locality: &mesh.LocalityLB{
			Distribute: []mesh.LocalityDistribute{{From: "eu/*", To: map[string]uint32{"eu/*": 100}}}, Failover: []mesh.LocalityFailover{{From: "eu", To: "us"}},
		}}}}}}, "only one of them"},
		{"failover to itself", mesh.Spec{Services: []mesh.Service{{Name: "s", Policy: mesh.ClusterPolicy{LoadBalancer: &mesh.LoadBalancer{Locality: &mesh.LocalityLB{Failover: []mesh.LocalityFailover{{From: "eu", To: "eu"}}}}}}}}, "name two different regions"},
		{"route without destination", mesh.Spec{Routes: []mesh.Route{{}}}, "routes[0].destinations: empty"},
		{"zero weights", mesh.Spec{Routes: []mesh.Route{{Destinations: []mesh.WeightedDestination{{Destination: mesh.Destination{Service: "a"}}, {Destination: mesh.Destination{Service: "b"}}}}}}, "all weights are 0"},
		{"header without name", mesh.Spec{Routes: []mesh.Route{{Matches: []mesh.RouteMatch{{Headers: []mesh.HeaderMatch{{}}}}, Destinations: dest}}}, "routes[0].matches[0].headers[0].name"},
		{"negative timeout", mesh.Spec{Routes: []mesh.Route{{Destinations: dest, Policy: mesh.RoutePolicy{Timeout: -1}}}}, "policy.timeout: negative"},
		{"abort percentage", mesh.Spec{Routes: []mesh.Route{{Destinations: dest, Policy: mesh.RoutePolicy{Fault: pct(101)}}}}, "fault.abort.percentage: 101 is outside 0 to 100"},
		{"abort NaN", mesh.Spec{Routes: []mesh.Route{{Destinations: dest, Policy: mesh.RoutePolicy{Fault: pct(nan())}}}}, "outside 0 to 100"},
		{"delay without duration", mesh.Spec{Routes: []mesh.Route{{Destinations: dest, Policy: mesh.RoutePolicy{Fault: &mesh.FaultPolicy{Delay: &mesh.FaultDelay{Percentage: 1}}}}}}, "fault.delay.fixed"},
		{"mirror without service", mesh.Spec{Routes: []mesh.Route{{Destinations: dest, Policy: mesh.RoutePolicy{Mirrors: []mesh.Mirror{{Percentage: 10}}}}}}, "mirrors[0].service"},
		{"backoff max below base", mesh.Spec{Routes: []mesh.Route{{Destinations: dest, Policy: mesh.RoutePolicy{Retry: &mesh.RetryPolicy{Backoff: mesh.Backoff{Base: time.Second, Max: time.Millisecond}}}}}}, "retry.backoff"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := mesh.NewSnapshot(tt.spec)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("NewSnapshot error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestNewSnapshotReportsEveryProblem(t *testing.T) {
	_, err := mesh.NewSnapshot(mesh.Spec{Services: []mesh.Service{{}, {Name: "s", Endpoints: []mesh.Endpoint{{}}}}, Routes: []mesh.Route{{}}})
	var joined interface{ Unwrap() []error }
	if !errors.As(err, &joined) || len(joined.Unwrap()) != 3 {
		t.Fatalf("error = %v, want 3 joined problems", err)
	}
}

func TestHeaderOpsApply(t *testing.T) {
	ops := mesh.HeaderOps{Set: map[string]string{"X-Env": "prod"}, Add: map[string]string{"x-user": "anon", "x-new": "1"}, Remove: []string{"X-Drop"}}
	got := ops.Apply(call.Attachments{"x-user": "alice", "x-drop": "y"})
	want := call.Attachments{"x-env": "prod", "x-user": "alice", "x-new": "1"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Apply = %v, want %v", got, want)
	}
}

func nan() float64 { z := 0.0; return z / z }
