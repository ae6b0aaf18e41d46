package routermesh

import (
	"context"
	"math"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoalmesh/shoal/sdk/call"
	"github.com/shoalmesh/shoal/sdk/mesh"
)

// TestRouteMatching runs one VirtualService's worth of match kinds through
// Invoke: each route tags the calls it takes, and the first match wins.
func TestRouteMatching(t *testing.T) {
	route := func(name string, matches ...mesh.RouteMatch) mesh.Route {
		return mesh.Route{
			Name:         name,
			Matches:      matches,
			Destinations: []mesh.WeightedDestination{{Destination: v1}},
			Policy:       mesh.RoutePolicy{RequestHeaders: mesh.HeaderOps{Set: map[string]string{"x-matched": name}}},
		}
	}
	hdr := func(name string, v mesh.StringMatch) mesh.HeaderMatch { return mesh.HeaderMatch{Name: name, Value: v} }
	spec := twoVersions(mesh.ClusterPolicy{},
		route("uri-exact", mesh.RouteMatch{Path: mesh.Exact("/greet.GreetService/Bye")}),
		route("regex", mesh.RouteMatch{Headers: []mesh.HeaderMatch{hdr("x-user", mesh.MustRegex("admin-[0-9]+"))}}),
		route("suffix", mesh.RouteMatch{Headers: []mesh.HeaderMatch{hdr("x-user", mesh.Suffix("@corp"))}}),
		route("present-without", mesh.RouteMatch{Headers: []mesh.HeaderMatch{
			{Name: "X-Debug"}, // presence; names compare case-insensitively
			{Name: "x-env", Value: mesh.Exact("prod"), Invert: true}, // withoutHeaders: absent or not prod
		}}),
		route("source", mesh.RouteMatch{
			Headers:      []mesh.HeaderMatch{hdr("x-tenant", mesh.Exact("blue"))},
			SourceLabels: map[string]string{"app": "web"},
		}),
		route("other-source", mesh.RouteMatch{SourceLabels: map[string]string{"app": "db"}}),
		route("either",
			mesh.RouteMatch{Headers: []mesh.HeaderMatch{hdr("x-a", mesh.Exact("1"))}},
			mesh.RouteMatch{Headers: []mesh.HeaderMatch{hdr("x-b", mesh.Exact("2"))}}),
		route("uri-ignore-case", mesh.RouteMatch{
			Path:    mesh.Prefix("/GREET.greetservice/").IgnoringCase(),
			Headers: []mesh.HeaderMatch{{Name: "x-case"}},
		}),
		route("absent", mesh.RouteMatch{Headers: []mesh.HeaderMatch{
			{Name: "x-gone", Invert: true}, // an inverted presence test: must be absent
			hdr("x-q", mesh.Exact("yes")),
		}}),
		route("uri-prefix", mesh.RouteMatch{Path: mesh.Prefix("/greet.GreetService/Stream")}),
	)
	web := newRouter(t, spec, WithSourceLabels(map[string]string{"app": "web", "version": "v3"}))
	anon := newRouter(t, spec)
	tests := []struct {
		name   string
		r      *Router
		method string
		att    call.Attachments
		want   string // "" for no route (UNIMPLEMENTED)
	}{
		{"exact uri first", web, "Bye", call.Attachments{"x-user": "admin-1"}, "uri-exact"},
		{"regex", web, "Greet", call.Attachments{"x-user": "admin-12"}, "regex"},
		{"regex matches whole value", web, "Greet", call.Attachments{"x-user": "admin-1x"}, ""},
		{"suffix", web, "Greet", call.Attachments{"x-user": "bob@corp"}, "suffix"},
		{"present, without absent", web, "Greet", call.Attachments{"x-debug": ""}, "present-without"},
		{"present, without other value", web, "Greet", call.Attachments{"x-debug": "1", "x-env": "dev"}, "present-without"},
		{"present, without matched", web, "Greet", call.Attachments{"x-debug": "1", "x-env": "prod"}, ""},
		{"source labels", web, "Greet", call.Attachments{"x-tenant": "blue"}, "source"},
		{"source labels, other caller", anon, "Greet", call.Attachments{"x-tenant": "blue"}, ""},
		{"first of ORed matches", web, "Greet", call.Attachments{"x-a": "1"}, "either"},
		{"second of ORed matches", web, "Greet", call.Attachments{"x-b": "2"}, "either"},
		{"neither ORed match", web, "Greet", call.Attachments{"x-a": "2", "x-b": "1"}, ""},
		{"uri ignoring case", web, "Greet", call.Attachments{"x-case": "1"}, "uri-ignore-case"},
		{"absent header", web, "Greet", call.Attachments{"x-q": "yes"}, "absent"},
		{"absent header present", web, "Greet", call.Attachments{"x-q": "yes", "x-gone": ""}, ""},
		{"uri prefix", anon, "StreamAll", nil, "uri-prefix"},
		{"nothing", anon, "Greet", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			info := &call.Info{Service: svc, Method: tt.method, Attachments: tt.att}
			got := ""
			err := tt.r.Invoke(context.Background(), info, nil, nil, func(_ context.Context, _ *mesh.Endpoint, info *call.Info, _, _ any) error {
				got = info.Attachments["x-matched"]
				return nil
			})
			if tt.want == "" {
				if call.CodeOf(err) != call.Unimplemented {
					t.Fatalf("err = %v (route %q), want UNIMPLEMENTED", err, got)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("route %q, err %v; want route %q", got, err, tt.want)
			}
		})
	}
}

// TestWeightedSplitThreeWays checks a 60/30/10 split with a fourth,
// zero-weight destination over 20,000 calls. Each share is within 5
// standard deviations of its weight (sqrt(p(1-p)/n): 0.35, 0.32 and 0.21
// points), and the zero-weight destination gets no call at all.
func TestWeightedSplitThreeWays(t *testing.T) {
	const n = 20000
	var eps []mesh.Endpoint
	var subsets []mesh.Subset
	var dests []mesh.WeightedDestination
	weights := []uint32{60, 30, 10, 0}
	for i, w := range weights {
		v := string(rune('1' + i)) // "1" .. "4"
		eps = append(eps, mesh.Endpoint{Address: "10.0.0." + v + ":1", Labels: map[string]string{"version": v}})
		subsets = append(subsets, mesh.Subset{Name: "v" + v, Labels: map[string]string{"version": v}})
		dests = append(dests, mesh.WeightedDestination{Destination: mesh.Destination{Service: svc, Subset: "v" + v}, Weight: w})
	}
	spec := mesh.Spec{
		Services: []mesh.Service{{Name: svc, Endpoints: eps, Subsets: subsets}},
		Routes:   []mesh.Route{{Name: "split", Destinations: dests}},
	}
	for _, seeded := range []bool{true, false} {
		var r *Router
		if seeded {
			r = newRouter(t, spec)
		} else {
			snap, err := mesh.NewSnapshot(spec)
			if err != nil {
				t.Fatal(err)
			}
			r = New()
			if err := r.Update(snap); err != nil {
				t.Fatal(err)
			}
		}
		counts := map[string]int{}
		for range n {
			if err := r.Invoke(context.Background(), greetCall(nil), nil, nil, func(_ context.Context, ep *mesh.Endpoint, _ *call.Info, _, _ any) error {
				counts[ep.Address]++
				return nil
			}); err != nil {
				t.Fatal(err)
			}
		}
		r.Close()
		for i, w := range weights {
			addr := eps[i].Address
			p := float64(w) / 100
			share := float64(counts[addr]) / n
			tol := 5 * math.Sqrt(p*(1-p)/n)
			if math.Abs(share-p) > tol || (w == 0 && counts[addr] != 0) {
				t.Errorf("seeded %v: %s got %.2f%% of calls, want %d%% +/- %.2f", seeded, addr, 100*share, w, 100*tol)
			}
		}
	}
}

// TestFaultDelayPercentage delays 30% of 10,000 calls: standard deviation
// 0.46 points, tolerance 2.5 (over 5 sigma). The sleep is recorded, not
// slept.
func TestFaultDelayPercentage(t *testing.T) {
	rt := split(100, 0)
	rt.Policy.Fault = &mesh.FaultPolicy{Delay: &mesh.FaultDelay{Fixed: 7 * time.Second, Percentage: 30}}
	delayed := 0
	r := newRouter(t, twoVersions(mesh.ClusterPolicy{}, rt), optionFunc(func(c *config) {
		c.sleep = func(_ <-chan struct{}, d time.Duration) bool {
			if d == 7*time.Second {
				delayed++
			}
			return true
		}
	}))
	for range 10000 {
		if err := r.Invoke(context.Background(), greetCall(nil), nil, nil, noop); err != nil {
			t.Fatal(err)
		}
	}
	if share := float64(delayed) / 100; share < 27.5 || share > 32.5 {
		t.Errorf("delayed %.1f%% of calls, want 30 +/- 2.5", share)
	}
}

// TestMirrorPercentage mirrors 25% of 10,000 calls: standard deviation 0.43
// points, tolerance 2.2 (5 sigma).
func TestMirrorPercentage(t *testing.T) {
	rt := split(100, 0)
	rt.Policy.Mirrors = []mesh.Mirror{{Destination: v2, Percentage: 25}}
	r := newRouter(t, twoVersions(mesh.ClusterPolicy{}, rt), WithMaxMirrors(10000))
	var mirrored atomic.Int64
	for range 10000 {
		if err := r.Invoke(context.Background(), greetCall(nil), nil, nil, func(_ context.Context, ep *mesh.Endpoint, _ *call.Info, _, _ any) error {
			if !isV1(ep.Address) {
				mirrored.Add(1)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	r.Close() // waits for the mirrors
	if share := float64(mirrored.Load()) / 100; share < 22.8 || share > 27.2 {
		t.Errorf("mirrored %.1f%% of calls, want 25 +/- 2.2", share)
	}
}

// TestInvokeDoesNotAllocate guards the benchmark's 0 allocations: a call
// through ten routes, header matches and a weighted split allocates nothing.
func TestInvokeDoesNotAllocate(t *testing.T) {
	r := newRouter(t, benchSpec())
	info := benchCall()
	ctx := context.Background()
	if n := testing.AllocsPerRun(1000, func() {
		if err := r.Invoke(ctx, info, nil, nil, noop); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("Invoke allocates %v times per call", n)
	}
}
