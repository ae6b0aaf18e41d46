package xdsresource_test

import (
	"strings"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/shoalmesh/shoal/registry-istio/xdsresource"
	"github.com/shoalmesh/shoal/registry-istio/xdstest"
)

const (
	host = "greeter.default.svc.cluster.local"
	port = 20000
)

func toAny(t testing.TB, m proto.Message) *anypb.Any {
	t.Helper()
	a, err := anypb.New(m)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

type testCase struct {
	name    string
	typ     xdsresource.Type
	msg     func() proto.Message
	check   func(t *testing.T, r xdsresource.Resource)
	wantErr string
}

func run(t *testing.T, tests []testCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name, r, err := xdsresource.Unmarshal(tt.typ, toAny(t, tt.msg()))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if name != r.ResourceName() || r.ResourceType() != tt.typ {
				t.Fatalf("name %q / %q, type %v", name, r.ResourceName(), r.ResourceType())
			}
			tt.check(t, r)
		})
	}
}

func hcmOf(l *listenerv3.Listener) *hcmv3.HttpConnectionManager {
	h := &hcmv3.HttpConnectionManager{}
	if err := l.GetApiListener().GetApiListener().UnmarshalTo(h); err != nil {
		panic(err)
	}
	return h
}

func withHCM(l *listenerv3.Listener, edit func(*hcmv3.HttpConnectionManager)) *listenerv3.Listener {
	h := hcmOf(l)
	edit(h)
	a, err := anypb.New(h)
	if err != nil {
		panic(err)
	}
	l.ApiListener.ApiListener = a
	return l
}

func TestListener(t *testing.T) {
	run(t, []testCase{
		{
			name: "istiod grpc generator listener",
			typ:  xdsresource.ListenerType,
			msg:  func() proto.Message { return xdstest.Listener(host, port) },
			check: func(t *testing.T, r xdsresource.Resource) {
				l := r.(*xdsresource.Listener)
				if l.Name != host+":20000" || l.RouteConfigName != "outbound|20000||"+host || !l.FaultFilter || len(l.HTTPFilters) != 2 {
					t.Fatalf("%+v", l)
				}
			},
		},
		{
			name: "inline routes",
			typ:  xdsresource.ListenerType,
			msg: func() proto.Message {
				return withHCM(xdstest.Listener(host, port), func(h *hcmv3.HttpConnectionManager) {
					h.RouteSpecifier = &hcmv3.HttpConnectionManager_RouteConfig{RouteConfig: xdstest.RouteConfig(host, port)}
				})
			},
			check: func(t *testing.T, r xdsresource.Resource) {
				l := r.(*xdsresource.Listener)
				if l.InlineRouteConfig == nil || l.RouteConfigName != "" || len(l.InlineRouteConfig.VirtualHosts) != 1 {
					t.Fatalf("%+v", l)
				}
			},
		},
		{
			name:    "no api listener",
			typ:     xdsresource.ListenerType,
			msg:     func() proto.Message { return &listenerv3.Listener{Name: "a:1"} },
			wantErr: `LDS resource "a:1": neither an api_listener`,
		},
		{
			name: "router not last",
			typ:  xdsresource.ListenerType,
			msg: func() proto.Message {
				return withHCM(xdstest.Listener(host, port), func(h *hcmv3.HttpConnectionManager) {
					h.HttpFilters[0], h.HttpFilters[1] = h.HttpFilters[1], h.HttpFilters[0]
				})
			},
			wantErr: "the router must be the last filter",
		},
		{
			name: "unknown required filter",
			typ:  xdsresource.ListenerType,
			msg: func() proto.Message {
				return withHCM(xdstest.Listener(host, port), func(h *hcmv3.HttpConnectionManager) {
					h.HttpFilters = append([]*hcmv3.HttpFilter{{Name: "lua", ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: toAny(t, &corev3.Node{})}}}, h.HttpFilters...)
				})
			},
			wantErr: `http_filters[0] "lua" has unsupported type`,
		},
		{
			name: "RDS not over ADS",
			typ:  xdsresource.ListenerType,
			msg: func() proto.Message {
				return withHCM(xdstest.Listener(host, port), func(h *hcmv3.HttpConnectionManager) {
					h.GetRds().ConfigSource = &corev3.ConfigSource{ConfigSourceSpecifier: &corev3.ConfigSource_ApiConfigSource{ApiConfigSource: &corev3.ApiConfigSource{}}}
				})
			},
			wantErr: "rds.config_source is not ADS",
		},
		{
			name: "empty RDS name",
			typ:  xdsresource.ListenerType,
			msg: func() proto.Message {
				return withHCM(xdstest.Listener(host, port), func(h *hcmv3.HttpConnectionManager) { h.GetRds().RouteConfigName = "" })
			},
			wantErr: "rds.route_config_name is empty",
		},
	})
}

func TestRouteConfig(t *testing.T) {
	v1, v2 := xdstest.ClusterName(host, "v1", port), xdstest.ClusterName(host, "v2", port)
	run(t, []testCase{
		{
			name: "default route with istiod's retry policy",
			typ:  xdsresource.RouteConfigType,
			msg:  func() proto.Message { return xdstest.RouteConfig(host, port) },
			check: func(t *testing.T, r xdsresource.Resource) {
				rc := r.(*xdsresource.RouteConfig)
				rt := rc.VirtualHosts[0].Routes[0]
				if rt.Match.PathKind != xdsresource.PathPrefix || rt.Match.Path != "/" || rt.Action != xdsresource.ActionRoute || rt.TotalWeight != 1 {
					t.Fatalf("%+v", rt)
				}
				rp := rt.RetryPolicy
				want := []string{"connect-failure", "refused-stream", "unavailable", "cancelled", "retriable-status-codes"}
				if rp == nil || rp.NumRetries != 2 || strings.Join(rp.RetryOn, ",") != strings.Join(want, ",") || rp.BaseInterval != 25*time.Millisecond || rp.MaxInterval != 250*time.Millisecond {
					t.Fatalf("retry %+v", rp)
				}
			},
		},
		{
			name: "weighted subsets, header match, timeout, fault",
			typ:  xdsresource.RouteConfigType,
			msg: func() proto.Message {
				canary := xdstest.WeightedRoute("canary", xdstest.HeaderMatch("/greet.GreetService/", map[string]string{"x-canary": "yes"}),
					xdstest.WeightedCluster{Name: v2, Weight: 100})
				split := xdstest.WithTimeout(xdstest.WeightedRoute("split", nil,
					xdstest.WeightedCluster{Name: v1, Weight: 80}, xdstest.WeightedCluster{Name: v2, Weight: 20},
					xdstest.WeightedCluster{Name: "zero", Weight: 0}), 100*time.Millisecond)
				xdstest.WithFault(split, 200*time.Millisecond, 10, 14, 50)
				return xdstest.RouteConfig(host, port, canary, split)
			},
			check: func(t *testing.T, r xdsresource.Resource) {
				routes := r.(*xdsresource.RouteConfig).VirtualHosts[0].Routes
				h := routes[0].Match.Headers
				if len(h) != 1 || h[0].Name != "x-canary" || h[0].Kind != xdsresource.MatchExact || h[0].Value != "yes" {
					t.Fatalf("headers %+v", h)
				}
				s := routes[1]
				if s.TotalWeight != 100 || len(s.WeightedClusters) != 2 || s.WeightedClusters[0].Name != v1 || s.WeightedClusters[0].Weight != 80 {
					t.Fatalf("clusters %+v total %d", s.WeightedClusters, s.TotalWeight)
				}
				if s.Timeout != 100*time.Millisecond {
					t.Fatalf("timeout %v", s.Timeout)
				}
				f := s.Fault
				if f == nil || f.Delay != 200*time.Millisecond || f.DelayPPM != 100_000 || f.AbortGRPCCode == nil || *f.AbortGRPCCode != 14 || f.AbortPPM != 500_000 {
					t.Fatalf("fault %+v", f)
				}
			},
		},
		{
			name: "regex paths and string matchers compile",
			typ:  xdsresource.RouteConfigType,
			msg: func() proto.Message {
				rt := xdstest.DefaultRoute("c")
				rt.Match = &routev3.RouteMatch{
					PathSpecifier: &routev3.RouteMatch_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{Regex: "/greet\\..*/Say.*"}},
					CaseSensitive: wrapperspb.Bool(false),
					Headers: []*routev3.HeaderMatcher{{
						Name: "X-User", InvertMatch: true,
						HeaderMatchSpecifier: &routev3.HeaderMatcher_StringMatch{StringMatch: &matcherv3.StringMatcher{
							MatchPattern: &matcherv3.StringMatcher_Suffix{Suffix: "@test"}, IgnoreCase: true,
						}},
					}},
				}
				return xdstest.RouteConfig(host, port, rt)
			},
			check: func(t *testing.T, r xdsresource.Resource) {
				m := r.(*xdsresource.RouteConfig).VirtualHosts[0].Routes[0].Match
				if m.PathRegex == nil || !m.PathRegex.MatchString("/GREET.v1/sayhello") || m.PathRegex.MatchString("/x/greet.a/Say") {
					t.Fatalf("regex %v", m.PathRegex)
				}
				h := m.Headers[0]
				if h.Name != "x-user" || h.Kind != xdsresource.MatchSuffix || !h.IgnoreCase || !h.Invert {
					t.Fatalf("header %+v", h)
				}
			},
		},
		{
			name: "bad regex",
			typ:  xdsresource.RouteConfigType,
			msg: func() proto.Message {
				rt := xdstest.DefaultRoute("c")
				rt.Match = &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{Regex: "(unclosed"}}}
				return xdstest.RouteConfig(host, port, rt)
			},
			wantErr: `routes[0] "default": match.safe_regex "(unclosed" does not compile`,
		},
		{
			name: "all weights zero",
			typ:  xdsresource.RouteConfigType,
			msg: func() proto.Message {
				return xdstest.RouteConfig(host, port, xdstest.WeightedRoute("w", nil, xdstest.WeightedCluster{Name: v1}))
			},
			wantErr: "total weight is 0",
		},
		{
			name: "weights overflow",
			typ:  xdsresource.RouteConfigType,
			msg: func() proto.Message {
				return xdstest.RouteConfig(host, port, xdstest.WeightedRoute("w", nil,
					xdstest.WeightedCluster{Name: v1, Weight: 1 << 31}, xdstest.WeightedCluster{Name: v2, Weight: 1 << 31}))
			},
			wantErr: "exceeds 4294967295",
		},
		{
			name: "negative timeout",
			typ:  xdsresource.RouteConfigType,
			msg: func() proto.Message {
				rt := xdstest.DefaultRoute("c")
				rt.GetRoute().MaxStreamDuration = nil
				rt.GetRoute().Timeout = durationpb.New(-time.Second)
				return xdstest.RouteConfig(host, port, rt)
			},
			wantErr: "route.timeout: negative duration",
		},
		{
			name: "retry backoff max below base",
			typ:  xdsresource.RouteConfigType,
			msg: func() proto.Message {
				rt := xdstest.DefaultRoute("c")
				rt.GetRoute().RetryPolicy.RetryBackOff = &routev3.RetryPolicy_RetryBackOff{BaseInterval: durationpb.New(time.Second), MaxInterval: durationpb.New(time.Millisecond)}
				return xdstest.RouteConfig(host, port, rt)
			},
			wantErr: "max_interval 1ms is below base_interval 1s",
		},
		{
			name: "abort with a code outside gRPC's",
			typ:  xdsresource.RouteConfigType,
			msg: func() proto.Message {
				return xdstest.RouteConfig(host, port, xdstest.WithFault(xdstest.DefaultRoute("c"), 0, 0, 99, 10))
			},
			wantErr: "fault.abort.grpc_status 99 is not a gRPC status code",
		},
		{
			name: "redirects are kept as unsupported, not rejected",
			typ:  xdsresource.RouteConfigType,
			msg: func() proto.Message {
				rt := &routev3.Route{Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}}, Action: &routev3.Route_Redirect{Redirect: &routev3.RedirectAction{}}}
				return xdstest.RouteConfig(host, port, rt)
			},
			check: func(t *testing.T, r xdsresource.Resource) {
				if a := r.(*xdsresource.RouteConfig).VirtualHosts[0].Routes[0].Action; a != xdsresource.ActionUnsupported {
					t.Fatalf("action %v", a)
				}
			},
		},
	})
}

func TestCluster(t *testing.T) {
	run(t, []testCase{
		{
			name: "istiod EDS cluster",
			typ:  xdsresource.ClusterType,
			msg:  func() proto.Message { return xdstest.Cluster(host, "v1", port) },
			check: func(t *testing.T, r xdsresource.Resource) {
				c := r.(*xdsresource.Cluster)
				if c.Name != "outbound|20000|v1|"+host || c.EDSServiceName != c.Name || c.LBPolicy != xdsresource.LBRoundRobin || c.MaxRequests != 1024 || c.OutlierDetection != nil {
					t.Fatalf("%+v", c)
				}
			},
		},
		{
			name: "least request, circuit breaker, outlier detection",
			typ:  xdsresource.ClusterType,
			msg: func() proto.Message {
				c := xdstest.WithOutlierDetection(xdstest.WithMaxRequests(xdstest.Cluster(host, "", port), 100), 3, time.Second, 30*time.Second, 50)
				c.LbPolicy = clusterv3.Cluster_LEAST_REQUEST
				return c
			},
			check: func(t *testing.T, r xdsresource.Resource) {
				c := r.(*xdsresource.Cluster)
				od := c.OutlierDetection
				if c.LBPolicy != xdsresource.LBLeastRequest || c.LeastRequestChoices != 2 || c.MaxRequests != 100 ||
					od == nil || od.Consecutive5xx != 3 || od.Interval != time.Second || od.BaseEjectionTime != 30*time.Second || od.MaxEjectionPercent != 50 {
					t.Fatalf("%+v %+v", c, od)
				}
			},
		},
		{
			name: "ring hash",
			typ:  xdsresource.ClusterType,
			msg:  func() proto.Message { return xdstest.WithRingHash(xdstest.Cluster(host, "", port), 2048) },
			check: func(t *testing.T, r xdsresource.Resource) {
				c := r.(*xdsresource.Cluster)
				if c.LBPolicy != xdsresource.LBRingHash || c.RingHash.MinRingSize != 2048 || c.RingHash.MaxRingSize != xdsresource.DefaultMaxRingSize {
					t.Fatalf("%+v", c)
				}
			},
		},
		{
			name: "not EDS",
			typ:  xdsresource.ClusterType,
			msg: func() proto.Message {
				c := xdstest.Cluster(host, "", port)
				c.ClusterDiscoveryType = &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STRICT_DNS}
				return c
			},
			wantErr: "type STRICT_DNS is not supported",
		},
		{
			name:    "ring too big",
			typ:     xdsresource.ClusterType,
			msg:     func() proto.Message { return xdstest.WithRingHash(xdstest.Cluster(host, "", port), 1<<40) },
			wantErr: "ring_hash_lb_config: need 0 < minimum_ring_size",
		},
		{
			name: "ejection percent above 100",
			typ:  xdsresource.ClusterType,
			msg: func() proto.Message {
				return xdstest.WithOutlierDetection(xdstest.Cluster(host, "", port), 1, time.Second, time.Second, 150)
			},
			wantErr: "outlier_detection: max_ejection_percent 150 is above 100",
		},
		{
			name: "EDS from a file",
			typ:  xdsresource.ClusterType,
			msg: func() proto.Message {
				c := xdstest.Cluster(host, "", port)
				c.EdsClusterConfig.EdsConfig = &corev3.ConfigSource{ConfigSourceSpecifier: &corev3.ConfigSource_ApiConfigSource{ApiConfigSource: &corev3.ApiConfigSource{}}}
				return c
			},
			wantErr: "eds_cluster_config.eds_config is not ADS",
		},
	})
}

func TestEndpoints(t *testing.T) {
	cluster := xdstest.ClusterName(host, "", port)
	run(t, []testCase{
		{
			name: "localities, weights, health, labels",
			typ:  xdsresource.EndpointsType,
			msg: func() proto.Message {
				cla := xdstest.ClusterLoadAssignment(cluster,
					xdstest.Endpoint{IP: "10.0.0.1", Port: port, Weight: 3, Locality: xdstest.Locality{Region: "eu", Zone: "a"}, Labels: map[string]string{"version": "v1"}, Workload: "greeter-1;default;greeter;v1;Kubernetes"},
					xdstest.Endpoint{IP: "10.0.0.2", Port: port, Health: corev3.HealthStatus_DRAINING, Locality: xdstest.Locality{Region: "eu", Zone: "a"}},
					xdstest.Endpoint{IP: "fd00::3", Port: port, Locality: xdstest.Locality{Region: "us"}, Priority: 1},
				)
				cla.Endpoints[0].LoadBalancingWeight = wrapperspb.UInt32(7)
				return cla
			},
			check: func(t *testing.T, r xdsresource.Resource) {
				e := r.(*xdsresource.Endpoints)
				if len(e.Localities) != 2 {
					t.Fatalf("%+v", e)
				}
				eu, us := e.Localities[0], e.Localities[1]
				if eu.Locality.String() != "eu/a/" || eu.Weight != 7 || eu.Priority != 0 || us.Priority != 1 {
					t.Fatalf("localities %+v", e.Localities)
				}
				a, b := eu.Endpoints[0], eu.Endpoints[1]
				if a.Address != "10.0.0.1:20000" || a.Weight != 3 || a.Health != xdsresource.HealthHealthy || !a.Health.Serving() ||
					a.Labels["version"] != "v1" || a.Labels["istio.workload"] != "greeter-1;default;greeter;v1;Kubernetes" {
					t.Fatalf("endpoint %+v", a)
				}
				if b.Weight != 1 || b.Health != xdsresource.HealthDraining || b.Health.Serving() {
					t.Fatalf("endpoint %+v", b)
				}
				if us.Endpoints[0].Address != "[fd00::3]:20000" {
					t.Fatalf("ipv6 %q", us.Endpoints[0].Address)
				}
			},
		},
		{
			name: "a repeated address is kept once, as Envoy does",
			typ:  xdsresource.EndpointsType,
			msg: func() proto.Message {
				return xdstest.ClusterLoadAssignment(cluster, xdstest.Endpoint{IP: "10.0.0.1", Port: 1, Weight: 5},
					xdstest.Endpoint{IP: "10.0.0.1", Port: 1, Locality: xdstest.Locality{Region: "other"}})
			},
			check: func(t *testing.T, r xdsresource.Resource) {
				e := r.(*xdsresource.Endpoints)
				if e.Duplicates != 1 || len(e.Localities[0].Endpoints) != 1 || e.Localities[0].Endpoints[0].Weight != 5 || len(e.Localities[1].Endpoints) != 0 {
					t.Fatalf("%+v", e)
				}
			},
		},
		{
			name:    "port zero",
			typ:     xdsresource.EndpointsType,
			msg:     func() proto.Message { return xdstest.ClusterLoadAssignment(cluster, xdstest.Endpoint{IP: "10.0.0.1"}) },
			wantErr: "port 0 is outside 1-65535",
		},
		{
			name: "priority gap",
			typ:  xdsresource.EndpointsType,
			msg: func() proto.Message {
				return xdstest.ClusterLoadAssignment(cluster, xdstest.Endpoint{IP: "10.0.0.1", Port: 1}, xdstest.Endpoint{IP: "10.0.0.2", Port: 1, Priority: 2, Locality: xdstest.Locality{Region: "x"}})
			},
			wantErr: "priorities are not contiguous: 2 is used but 1 is missing",
		},
		{
			name:    "no name",
			typ:     xdsresource.EndpointsType,
			msg:     func() proto.Message { return &endpointv3.ClusterLoadAssignment{} },
			wantErr: "resource has no name",
		},
	})
}

func TestUnmarshalEnvelope(t *testing.T) {
	if _, _, err := xdsresource.Unmarshal(xdsresource.ClusterType, toAny(t, xdstest.Listener(host, port))); err == nil ||
		!strings.Contains(err.Error(), "envoy.config.listener.v3.Listener\" in a CDS response") {
		t.Fatalf("type mismatch error = %v", err)
	}
	bad := &anypb.Any{TypeUrl: xdsresource.ClusterURL, Value: []byte{0xff, 0xff}}
	if _, _, err := xdsresource.Unmarshal(xdsresource.ClusterType, bad); err == nil || !strings.Contains(err.Error(), "cannot decode envoy.config.cluster.v3.Cluster") {
		t.Fatalf("garbage error = %v", err)
	}
	if _, _, err := xdsresource.Unmarshal(xdsresource.ClusterType, nil); err == nil {
		t.Fatal("nil resource accepted")
	}
	// Resources wrapped in envoy.service.discovery.v3.Resource are unwrapped.
	w := toAny(t, &discoveryv3.Resource{Name: xdstest.ClusterName(host, "", port), Resource: toAny(t, xdstest.Cluster(host, "", port))})
	name, r, err := xdsresource.Unmarshal(xdsresource.ClusterType, w)
	if err != nil || name != xdstest.ClusterName(host, "", port) || r == nil {
		t.Fatalf("wrapped: %q %v %v", name, r, err)
	}
}

func TestQueryParameterMatchesAreAccepted(t *testing.T) {
	rt := xdstest.DefaultRoute("c")
	rt.Match.QueryParameters = []*routev3.QueryParameterMatcher{{Name: "debug"}}
	_, r, err := xdsresource.Unmarshal(xdsresource.RouteConfigType, toAny(t, xdstest.RouteConfig(host, port, rt)))
	if err != nil {
		t.Fatal(err)
	}
	if got := r.(*xdsresource.RouteConfig).VirtualHosts[0].Routes[0].Match.QueryParameters; len(got) != 1 || got[0] != "debug" {
		t.Fatalf("query parameters %v", got)
	}
}
