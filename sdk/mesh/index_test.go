package mesh

import (
	"testing"

	"github.com/shoalmesh/shoal/sdk/call"
)

// TestIndexedMatchAgreesWithPerMatcherLookup checks the per-call header
// table against evaluating every route with Applies, over many calls.
func TestIndexedMatchAgreesWithPerMatcherLookup(t *testing.T) {
	hm := func(name string, v StringMatch, invert bool) HeaderMatch {
		return HeaderMatch{Name: name, Value: v, Invert: invert}
	}
	dest := []WeightedDestination{{Destination: Destination{Service: "s"}}}
	spec := Spec{
		Services: []Service{{Name: "s", Endpoints: []Endpoint{{Address: "10.0.0.1:1"}}}},
		Routes: []Route{
			{Name: "a", Matches: []RouteMatch{{Headers: []HeaderMatch{hm("X-User", Prefix("u-"), false), hm("x-tenant", Exact("blue"), false)}}}, Destinations: dest},
			{Name: "b", Matches: []RouteMatch{{Headers: []HeaderMatch{hm("x-canary", StringMatch{}, false)}}, {Path: Exact("/s/B")}}, Destinations: dest},
			{Name: "c", Matches: []RouteMatch{{Headers: []HeaderMatch{hm("x-tenant", Exact("red"), true)}}}, Destinations: dest},
			{Name: "d", Destinations: dest},
		},
	}
	snap, err := NewSnapshot(spec)
	if err != nil {
		t.Fatal(err)
	}
	values := []string{"", "u-1", "blue", "red", "x"}
	paths := []string{"/s/A", "/s/B"}
	n := 0
	for _, p := range paths {
		for _, user := range values {
			for _, tenant := range values {
				for _, canary := range values[:2] {
					a := call.Attachments{}
					for k, v := range map[string]string{"x-user": user, "x-tenant": tenant, "x-canary": canary} {
						if v != "" {
							a[k] = v
						}
					}
					var want *Route
					for i := range snap.routes {
						if snap.routes[i].Applies(p, a, nil) {
							want = &snap.routes[i]
							break
						}
					}
					if got := snap.Match(p, a, nil); got != want {
						t.Errorf("path %s attachments %v: Match = %v, per-matcher = %v", p, a, name(got), name(want))
					}
					n++
				}
			}
		}
	}
	if n != 100 {
		t.Fatalf("checked %d calls", n)
	}
}

func name(r *Route) string {
	if r == nil {
		return "<nil>"
	}
	return r.Name
}
