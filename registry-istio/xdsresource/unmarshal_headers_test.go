package xdsresource_test

import (
	"reflect"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/shoalmesh/shoal/registry-istio/xdsresource"
	"github.com/shoalmesh/shoal/registry-istio/xdstest"
)

func hvo(key, value string, action corev3.HeaderValueOption_HeaderAppendAction) *corev3.HeaderValueOption {
	return &corev3.HeaderValueOption{Header: &corev3.HeaderValue{Key: key, Value: value}, AppendAction: action}
}

// headersRoute is what istiod sends for a VirtualService route with
// headers.request (set x-env, add x-tenant, remove x-debug) splitting to two
// destinations, the second with its own headers.request.set; the virtual
// host and the configuration carry edits of their own.
func headersRoute() *routev3.RouteConfiguration {
	v1, v2 := xdstest.ClusterName(host, "v1", port), xdstest.ClusterName(host, "v2", port)
	rt := xdstest.WeightedRoute("split", nil, xdstest.WeightedCluster{Name: v1, Weight: 80}, xdstest.WeightedCluster{Name: v2, Weight: 20})
	rt.RequestHeadersToAdd = []*corev3.HeaderValueOption{
		hvo("X-Env", "prod", corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD),
		hvo("x-tenant", "blue", corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD),
	}
	rt.RequestHeadersToRemove = []string{"X-Debug"}
	wc := rt.GetRoute().GetWeightedClusters().GetClusters()[1]
	wc.RequestHeadersToAdd = []*corev3.HeaderValueOption{hvo("x-canary", "yes", corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD)}
	wc.RequestHeadersToRemove = []string{"x-stable"}
	rc := xdstest.RouteConfig(host, port, rt)
	rc.GetVirtualHosts()[0].RequestHeadersToAdd = []*corev3.HeaderValueOption{hvo("x-vh", "1", corev3.HeaderValueOption_ADD_IF_ABSENT)}
	rc.RequestHeadersToRemove = []string{"x-rc"}
	rc.MostSpecificHeaderMutationsWins = true
	return rc
}

// Request header edits are read at every level Envoy applies them (route
// configuration, virtual host, route, weighted cluster), with their append
// action; names are lower-cased. They used to be dropped, so a
// VirtualService's headers.request never reached a provider through istiod.
func TestRouteConfigRequestHeaders(t *testing.T) {
	run(t, []testCase{
		{
			name: "every level",
			typ:  xdsresource.RouteConfigType,
			msg:  func() proto.Message { return headersRoute() },
			check: func(t *testing.T, r xdsresource.Resource) {
				rc := r.(*xdsresource.RouteConfig)
				vh := rc.VirtualHosts[0]
				rt := vh.Routes[0]
				want := map[string]xdsresource.HeaderMutations{
					"configuration": {Remove: []string{"x-rc"}},
					"virtual host":  {Add: []xdsresource.HeaderValueOption{{Name: "x-vh", Value: "1", Action: xdsresource.AddIfAbsent}}},
					"route": {
						Add: []xdsresource.HeaderValueOption{
							{Name: "x-env", Value: "prod", Action: xdsresource.OverwriteIfExistsOrAdd},
							{Name: "x-tenant", Value: "blue", Action: xdsresource.AppendIfExistsOrAdd},
						},
						Remove: []string{"x-debug"},
					},
					"weighted cluster v2": {
						Add:    []xdsresource.HeaderValueOption{{Name: "x-canary", Value: "yes", Action: xdsresource.OverwriteIfExistsOrAdd}},
						Remove: []string{"x-stable"},
					},
				}
				got := map[string]xdsresource.HeaderMutations{
					"configuration":       rc.RequestHeaders,
					"virtual host":        vh.RequestHeaders,
					"route":               rt.RequestHeaders,
					"weighted cluster v2": rt.WeightedClusters[1].RequestHeaders,
				}
				for k, w := range want {
					if !reflect.DeepEqual(got[k], w) {
						t.Errorf("%s: %+v, want %+v", k, got[k], w)
					}
				}
				if !rt.WeightedClusters[0].RequestHeaders.IsZero() || !rc.MostSpecificHeaderMutationsWins {
					t.Errorf("v1 %+v, most specific wins %v", rt.WeightedClusters[0].RequestHeaders, rc.MostSpecificHeaderMutationsWins)
				}
			},
		},
		{
			name: "deprecated append flag",
			typ:  xdsresource.RouteConfigType,
			msg: func() proto.Message {
				rc := headersRoute()
				rc.RequestHeadersToAdd = []*corev3.HeaderValueOption{
					{Header: &corev3.HeaderValue{Key: "x-a", Value: "1"}, Append: wrapperspb.Bool(false)},
					{Header: &corev3.HeaderValue{Key: "x-b", Value: "2"}, Append: wrapperspb.Bool(true)},
					{Header: &corev3.HeaderValue{Key: "x-c", RawValue: []byte("3")}, KeepEmptyValue: true},
				}
				return rc
			},
			check: func(t *testing.T, r xdsresource.Resource) {
				want := []xdsresource.HeaderValueOption{
					{Name: "x-a", Value: "1", Action: xdsresource.OverwriteIfExistsOrAdd},
					{Name: "x-b", Value: "2", Action: xdsresource.AppendIfExistsOrAdd},
					{Name: "x-c", Value: "3", Action: xdsresource.AppendIfExistsOrAdd, KeepEmptyValue: true},
				}
				if got := r.(*xdsresource.RouteConfig).RequestHeaders.Add; !reflect.DeepEqual(got, want) {
					t.Fatalf("%+v, want %+v", got, want)
				}
			},
		},
		{
			name: "pseudo-header",
			typ:  xdsresource.RouteConfigType,
			msg: func() proto.Message {
				rc := headersRoute()
				rc.GetVirtualHosts()[0].GetRoutes()[0].RequestHeadersToAdd[0].Header.Key = ":authority"
				return rc
			},
			wantErr: `request_headers_to_add[0]: header ":authority" may not be modified`,
		},
		{
			name: "host removed",
			typ:  xdsresource.RouteConfigType,
			msg: func() proto.Message {
				rc := headersRoute()
				rc.GetVirtualHosts()[0].RequestHeadersToRemove = []string{"Host"}
				return rc
			},
			wantErr: `request_headers_to_remove[0]: header "Host" may not be modified`,
		},
		{
			name: "append and append_action",
			typ:  xdsresource.RouteConfigType,
			msg: func() proto.Message {
				rc := headersRoute()
				o := rc.GetVirtualHosts()[0].GetRoutes()[0].GetRoute().GetWeightedClusters().GetClusters()[1].RequestHeadersToAdd[0]
				o.Append = wrapperspb.Bool(true)
				return rc
			},
			wantErr: `weighted_clusters.clusters[1] "outbound|20000|v2|greeter.default.svc.cluster.local": request_headers_to_add[0]: header "x-canary" sets both append and append_action`,
		},
		{
			name: "line break in a value",
			typ:  xdsresource.RouteConfigType,
			msg: func() proto.Message {
				rc := headersRoute()
				rc.GetVirtualHosts()[0].GetRoutes()[0].RequestHeadersToAdd[1].Header.Value = "a\r\nx-evil: 1"
				return rc
			},
			wantErr: `header "x-tenant": value holds NUL, CR or LF`,
		},
	})
}
