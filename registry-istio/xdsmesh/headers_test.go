package xdsmesh_test

import (
	"maps"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/shoalmesh/shoal/registry-istio/xdsmesh"
	"github.com/shoalmesh/shoal/registry-istio/xdsresource"
	"github.com/shoalmesh/shoal/registry-istio/xdstest"
	"github.com/shoalmesh/shoal/sdk/call"
	"github.com/shoalmesh/shoal/sdk/mesh"
)

func set(k, v string) *corev3.HeaderValueOption {
	return &corev3.HeaderValueOption{Header: &corev3.HeaderValue{Key: k, Value: v}, AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD}
}

func add(k, v string) *corev3.HeaderValueOption {
	return &corev3.HeaderValueOption{Header: &corev3.HeaderValue{Key: k, Value: v}, AppendAction: corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD}
}

// splitConfig is istiod's route configuration for target: one route
// splitting 80/20 between subsets v1 and v2; edit adds header edits.
func splitConfig(t *testing.T, edit func(rc *routev3.RouteConfiguration, vh *routev3.VirtualHost, rt *routev3.Route, v1, v2 *routev3.WeightedCluster_ClusterWeight)) *xdsresource.RouteConfig {
	t.Helper()
	rt := xdstest.WeightedRoute("split", nil, xdstest.WeightedCluster{Name: v1.Name, Weight: 80}, xdstest.WeightedCluster{Name: v2.Name, Weight: 20})
	rc := xdstest.RouteConfig(host, 20000, rt)
	wcs := rt.GetRoute().GetWeightedClusters().GetClusters()
	edit(rc, rc.GetVirtualHosts()[0], rt, wcs[0], wcs[1])
	a, err := anypb.New(rc)
	if err != nil {
		t.Fatal(err)
	}
	_, r, err := xdsresource.Unmarshal(xdsresource.RouteConfigType, a)
	if err != nil {
		t.Fatal(err)
	}
	return r.(*xdsresource.RouteConfig)
}

// sent returns the attachments a call carrying in is sent with to subset,
// as router-mesh applies the mesh route's edits (the policy's, then the
// destination's).
func sent(t *testing.T, s *mesh.Snapshot, subset string, in call.Attachments) call.Attachments {
	t.Helper()
	r := s.Match("/greet.GreetService/Greet", in, nil)
	if r == nil {
		t.Fatal("no route")
	}
	for _, d := range r.Destinations {
		if d.Subset == subset {
			out := maps.Clone(in)
			out = r.Policy.RequestHeaders.Apply(out)
			return d.RequestHeaders.Apply(out)
		}
	}
	t.Fatalf("no destination %s in %+v", subset, r.Destinations)
	return nil
}

// A VirtualService's headers.request (and Envoy's header edits at every
// level) reach the mesh route with Envoy's semantics: within a level
// removals first, then additions in order; across levels the weighted
// cluster's first, then the route's, the virtual host's and the
// configuration's (reversed by most_specific_header_mutations_wins). They
// used to be dropped, so the provider saw the caller's headers unchanged.
func TestTranslateRequestHeaders(t *testing.T) {
	type edit = func(rc *routev3.RouteConfiguration, vh *routev3.VirtualHost, rt *routev3.Route, v1, v2 *routev3.WeightedCluster_ClusterWeight)
	tests := []struct {
		name   string
		edit   edit
		in     call.Attachments
		v1, v2 call.Attachments
	}{
		{
			name: "istio headers.request set, add, remove on the route",
			edit: func(_ *routev3.RouteConfiguration, _ *routev3.VirtualHost, rt *routev3.Route, _, _ *routev3.WeightedCluster_ClusterWeight) {
				rt.RequestHeadersToAdd = []*corev3.HeaderValueOption{set("X-Env", "prod"), add("x-tenant", "blue"), add("x-region", "eu")}
				rt.RequestHeadersToRemove = []string{"x-debug"}
			},
			in: call.Attachments{"x-env": "dev", "x-debug": "1", "x-user": "u", "x-region": "us"},
			// add keeps a value that is there (one value per attachment)
			v1: call.Attachments{"x-env": "prod", "x-tenant": "blue", "x-user": "u", "x-region": "us"},
			v2: call.Attachments{"x-env": "prod", "x-tenant": "blue", "x-user": "u", "x-region": "us"},
		},
		{
			name: "per destination, applied before the route's",
			edit: func(_ *routev3.RouteConfiguration, _ *routev3.VirtualHost, rt *routev3.Route, _, v2 *routev3.WeightedCluster_ClusterWeight) {
				rt.RequestHeadersToAdd = []*corev3.HeaderValueOption{add("x-a", "route")}
				rt.RequestHeadersToRemove = []string{"x-b"}
				v2.RequestHeadersToAdd = []*corev3.HeaderValueOption{set("x-a", "v2"), set("x-b", "v2")}
				v2.RequestHeadersToRemove = []string{"x-stable"}
			},
			in: call.Attachments{"x-stable": "1", "x-b": "in"},
			v1: call.Attachments{"x-a": "route", "x-stable": "1"},
			v2: call.Attachments{"x-a": "v2"},
		},
		{
			name: "the virtual host and the configuration have the last word",
			edit: func(rc *routev3.RouteConfiguration, vh *routev3.VirtualHost, rt *routev3.Route, _, _ *routev3.WeightedCluster_ClusterWeight) {
				rt.RequestHeadersToAdd = []*corev3.HeaderValueOption{set("x-o", "route"), set("x-p", "route")}
				rt.RequestHeadersToRemove = []string{"x-r"}
				vh.RequestHeadersToAdd = []*corev3.HeaderValueOption{set("x-o", "vh"), add("x-r", "vh")}
				rc.RequestHeadersToRemove = []string{"x-p"}
			},
			in: call.Attachments{"x-r": "in"},
			v1: call.Attachments{"x-o": "vh", "x-r": "vh"},
			v2: call.Attachments{"x-o": "vh", "x-r": "vh"},
		},
		{
			name: "most specific wins",
			edit: func(rc *routev3.RouteConfiguration, vh *routev3.VirtualHost, rt *routev3.Route, _, v2 *routev3.WeightedCluster_ClusterWeight) {
				rc.MostSpecificHeaderMutationsWins = true
				rt.RequestHeadersToAdd = []*corev3.HeaderValueOption{set("x-o", "route")}
				vh.RequestHeadersToAdd = []*corev3.HeaderValueOption{set("x-o", "vh"), set("x-v", "vh")}
				v2.RequestHeadersToRemove = []string{"x-v"}
			},
			in: call.Attachments{},
			v1: call.Attachments{"x-o": "route", "x-v": "vh"},
			v2: call.Attachments{"x-o": "route"},
		},
		{
			name: "empty values",
			edit: func(_ *routev3.RouteConfiguration, _ *routev3.VirtualHost, rt *routev3.Route, _, _ *routev3.WeightedCluster_ClusterWeight) {
				keep := set("x-keep", "")
				keep.KeepEmptyValue = true
				rt.RequestHeadersToAdd = []*corev3.HeaderValueOption{set("x-drop", ""), keep}
			},
			in: call.Attachments{"x-drop": "in"},
			v1: call.Attachments{"x-drop": "in", "x-keep": ""},
			v2: call.Attachments{"x-drop": "in", "x-keep": ""},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := input()
			in.Routes = splitConfig(t, tt.edit)
			s := snapshot(t, in)
			for subset, want := range map[string]call.Attachments{"v1": tt.v1, "v2": tt.v2} {
				if got := sent(t, s, subset, maps.Clone(tt.in)); !maps.Equal(got, want) {
					t.Errorf("%s gets %v, want %v", subset, got, want)
				}
			}
		})
	}
}

// An edit the mesh model cannot express (replace a header only when it is
// there) fails the translation, so the last good snapshot stays.
func TestTranslateRejectsOverwriteIfExists(t *testing.T) {
	in := input()
	in.Routes = splitConfig(t, func(_ *routev3.RouteConfiguration, vh *routev3.VirtualHost, _ *routev3.Route, _, _ *routev3.WeightedCluster_ClusterWeight) {
		o := set("x-o", "1")
		o.AppendAction = corev3.HeaderValueOption_OVERWRITE_IF_EXISTS
		vh.RequestHeadersToAdd = []*corev3.HeaderValueOption{o}
	})
	if _, err := xdsmesh.Translate(in); err == nil || !strings.Contains(err.Error(), `request header "x-o": append_action OVERWRITE_IF_EXISTS`) {
		t.Fatalf("Translate: %v", err)
	}
}
