package xdstest

import (
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	commonfaultv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/common/fault/v3"
	faultv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/fault/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// FaultFilterName is the HTTP filter name istiod uses for fault injection,
// and the key of its per-route configuration.
const FaultFilterName = "envoy.filters.http.fault"

// Resources is a full state of the world: every resource the server serves.
type Resources struct {
	Listeners []*listenerv3.Listener
	Routes    []*routev3.RouteConfiguration
	Clusters  []*clusterv3.Cluster
	Endpoints []*endpointv3.ClusterLoadAssignment
}

// Merge returns r with the resources of others appended.
func (r Resources) Merge(others ...Resources) Resources {
	out := Resources{
		Listeners: append([]*listenerv3.Listener(nil), r.Listeners...),
		Routes:    append([]*routev3.RouteConfiguration(nil), r.Routes...),
		Clusters:  append([]*clusterv3.Cluster(nil), r.Clusters...),
		Endpoints: append([]*endpointv3.ClusterLoadAssignment(nil), r.Endpoints...),
	}
	for _, o := range others {
		out.Listeners = append(out.Listeners, o.Listeners...)
		out.Routes = append(out.Routes, o.Routes...)
		out.Clusters = append(out.Clusters, o.Clusters...)
		out.Endpoints = append(out.Endpoints, o.Endpoints...)
	}
	return out
}

// Endpoint describes one address of a ClusterLoadAssignment.
type Endpoint struct {
	IP   string
	Port uint32
	// Weight is the endpoint weight; 0 leaves it unset.
	Weight uint32
	// Health defaults to HEALTHY, as istiod reports ready pods.
	Health   corev3.HealthStatus
	Locality Locality
	Priority uint32
	// Labels go into the "envoy.lb" metadata; Workload into istio's.
	Labels   map[string]string
	Workload string
}

// Unhealthy is the Health of an endpoint istiod reports as not ready, so
// tests outside registry-istio need not import Envoy's types.
const Unhealthy = corev3.HealthStatus_UNHEALTHY

// Locality is where an endpoint runs.
type Locality struct {
	Region, Zone, SubZone string
}

// Service returns what istiod sends for one service: its listener, its route
// configuration with a default route, its default cluster and the
// endpoints of that cluster.
func Service(host string, port uint32, endpoints ...Endpoint) Resources {
	cluster := ClusterName(host, "", port)
	return Resources{
		Listeners: []*listenerv3.Listener{Listener(host, port)},
		Routes:    []*routev3.RouteConfiguration{RouteConfig(host, port)},
		Clusters:  []*clusterv3.Cluster{Cluster(host, "", port)},
		Endpoints: []*endpointv3.ClusterLoadAssignment{ClusterLoadAssignment(cluster, endpoints...)},
	}
}

// Listener returns an API listener named host:port, with the fault and router
// filters and an RDS reference to outbound|port||host, as istiod's grpc
// generator builds it.
func Listener(host string, port uint32) *listenerv3.Listener {
	hcm := &hcmv3.HttpConnectionManager{
		HttpFilters: []*hcmv3.HttpFilter{
			{Name: FaultFilterName, ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: mustAny(&faultv3.HTTPFault{})}},
			{Name: "envoy.filters.http.router", ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: mustAny(&routerv3.Router{})}},
		},
		RouteSpecifier: &hcmv3.HttpConnectionManager_Rds{Rds: &hcmv3.Rds{
			ConfigSource:    adsSource(),
			RouteConfigName: RouteName(host, port),
		}},
	}
	return &listenerv3.Listener{
		Name: ListenerName(host, port),
		Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
			Address: "10.96.0.1", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port},
		}}},
		ApiListener: &listenerv3.ApiListener{ApiListener: mustAny(hcm)},
	}
}

// RouteConfig returns the route configuration outbound|port||host with one
// virtual host for the service. Without routes it holds DefaultRoute to the
// service's default cluster.
func RouteConfig(host string, port uint32, routes ...*routev3.Route) *routev3.RouteConfiguration {
	if len(routes) == 0 {
		routes = []*routev3.Route{DefaultRoute(ClusterName(host, "", port))}
	}
	name := ListenerName(host, port)
	return &routev3.RouteConfiguration{
		Name: RouteName(host, port),
		VirtualHosts: []*routev3.VirtualHost{{
			Name:    name,
			Domains: []string{host, name},
			Routes:  routes,
		}},
	}
}

// DefaultRoute matches everything and sends it to cluster, with istiod's
// default retry policy for gRPC.
func DefaultRoute(cluster string) *routev3.Route {
	return &routev3.Route{
		Name:  "default",
		Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}},
		Action: &routev3.Route_Route{Route: &routev3.RouteAction{
			ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: cluster},
			Timeout:          durationpb.New(0),
			RetryPolicy:      RetryPolicy("connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes", 2, 0),
			MaxStreamDuration: &routev3.RouteAction_MaxStreamDuration{
				MaxStreamDuration: durationpb.New(0),
			},
		}},
	}
}

// WeightedCluster is one destination of WeightedRoute.
type WeightedCluster struct {
	Name   string
	Weight uint32
}

// WeightedRoute returns a route splitting the calls that match among clusters
// by weight, as istiod builds it from a VirtualService.
func WeightedRoute(name string, match *routev3.RouteMatch, clusters ...WeightedCluster) *routev3.Route {
	wc := &routev3.WeightedCluster{}
	for _, c := range clusters {
		wc.Clusters = append(wc.Clusters, &routev3.WeightedCluster_ClusterWeight{Name: c.Name, Weight: wrapperspb.UInt32(c.Weight)})
	}
	if match == nil {
		match = &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}}
	}
	return &routev3.Route{
		Name:   name,
		Match:  match,
		Action: &routev3.Route_Route{Route: &routev3.RouteAction{ClusterSpecifier: &routev3.RouteAction_WeightedClusters{WeightedClusters: wc}}},
	}
}

// HeaderMatch returns a route match on a path prefix and exact header values.
func HeaderMatch(prefix string, headers map[string]string) *routev3.RouteMatch {
	m := &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: prefix}}
	for k, v := range headers {
		m.Headers = append(m.Headers, &routev3.HeaderMatcher{
			Name: k,
			HeaderMatchSpecifier: &routev3.HeaderMatcher_StringMatch{StringMatch: &matcherv3.StringMatcher{
				MatchPattern: &matcherv3.StringMatcher_Exact{Exact: v},
			}},
		})
	}
	return m
}

// RetryPolicy returns an Envoy retry policy like istiod's: retryOn
// conditions, attempts and an optional per-try timeout.
func RetryPolicy(retryOn string, attempts uint32, perTry time.Duration) *routev3.RetryPolicy {
	rp := &routev3.RetryPolicy{
		RetryOn:                       retryOn,
		NumRetries:                    wrapperspb.UInt32(attempts),
		HostSelectionRetryMaxAttempts: 5,
	}
	if perTry > 0 {
		rp.PerTryTimeout = durationpb.New(perTry)
	}
	return rp
}

// WithTimeout sets the route timeout the way istiod does for gRPC clients
// (timeout and max_stream_duration) and returns r.
func WithTimeout(r *routev3.Route, d time.Duration) *routev3.Route {
	a := r.GetRoute()
	a.Timeout = durationpb.New(d)
	a.MaxStreamDuration = &routev3.RouteAction_MaxStreamDuration{MaxStreamDuration: durationpb.New(d)}
	return r
}

// WithFault attaches a fault injection policy to r: a fixed delay for
// delayPercent of calls and an abort with a gRPC status for abortPercent.
// A zero delay or code leaves that part out.
func WithFault(r *routev3.Route, delay time.Duration, delayPercent uint32, grpcCode, abortPercent uint32) *routev3.Route {
	f := &faultv3.HTTPFault{}
	if delay > 0 {
		f.Delay = &commonfaultv3.FaultDelay{
			FaultDelaySecifier: &commonfaultv3.FaultDelay_FixedDelay{FixedDelay: durationpb.New(delay)},
			Percentage:         &typev3.FractionalPercent{Numerator: delayPercent * 10_000, Denominator: typev3.FractionalPercent_MILLION},
		}
	}
	if grpcCode > 0 {
		f.Abort = &faultv3.FaultAbort{
			ErrorType:  &faultv3.FaultAbort_GrpcStatus{GrpcStatus: grpcCode},
			Percentage: &typev3.FractionalPercent{Numerator: abortPercent * 10_000, Denominator: typev3.FractionalPercent_MILLION},
		}
	}
	if r.TypedPerFilterConfig == nil {
		r.TypedPerFilterConfig = map[string]*anypb.Any{}
	}
	r.TypedPerFilterConfig[FaultFilterName] = mustAny(f)
	return r
}

// Cluster returns istiod's EDS cluster outbound|port|subset|host (round robin,
// endpoints over ADS).
func Cluster(host, subset string, port uint32) *clusterv3.Cluster {
	return &clusterv3.Cluster{
		Name:                 ClusterName(host, subset, port),
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS},
		EdsClusterConfig: &clusterv3.Cluster_EdsClusterConfig{
			ServiceName: ClusterName(host, subset, port),
			EdsConfig:   adsSource(),
		},
		LbPolicy: clusterv3.Cluster_ROUND_ROBIN,
	}
}

// WithMaxRequests sets the circuit breaker on concurrent requests (what
// istiod derives from connectionPool.http.http2MaxRequests) and returns c.
func WithMaxRequests(c *clusterv3.Cluster, n uint32) *clusterv3.Cluster {
	c.CircuitBreakers = &clusterv3.CircuitBreakers{Thresholds: []*clusterv3.CircuitBreakers_Thresholds{{MaxRequests: wrapperspb.UInt32(n)}}}
	return c
}

// WithOutlierDetection sets outlier detection on c and returns it. Istiod's
// grpc generator does not send it today (see the README); Envoy's does.
func WithOutlierDetection(c *clusterv3.Cluster, consecutive5xx uint32, interval, baseEjection time.Duration, maxPercent uint32) *clusterv3.Cluster {
	c.OutlierDetection = &clusterv3.OutlierDetection{
		Consecutive_5Xx:    wrapperspb.UInt32(consecutive5xx),
		Interval:           durationpb.New(interval),
		BaseEjectionTime:   durationpb.New(baseEjection),
		MaxEjectionPercent: wrapperspb.UInt32(maxPercent),
	}
	return c
}

// WithRingHash switches c to consistent hashing with the given minimum ring
// size and returns it.
func WithRingHash(c *clusterv3.Cluster, minRing uint64) *clusterv3.Cluster {
	c.LbPolicy = clusterv3.Cluster_RING_HASH
	c.LbConfig = &clusterv3.Cluster_RingHashLbConfig_{RingHashLbConfig: &clusterv3.Cluster_RingHashLbConfig{
		MinimumRingSize: wrapperspb.UInt64(minRing),
	}}
	return c
}

// ClusterLoadAssignment returns the endpoints of cluster grouped by
// locality and priority, in the order first seen.
func ClusterLoadAssignment(cluster string, endpoints ...Endpoint) *endpointv3.ClusterLoadAssignment {
	type key struct {
		l Locality
		p uint32
	}
	cla := &endpointv3.ClusterLoadAssignment{ClusterName: cluster}
	groups := map[key]*endpointv3.LocalityLbEndpoints{}
	for _, e := range endpoints {
		k := key{e.Locality, e.Priority}
		g, ok := groups[k]
		if !ok {
			g = &endpointv3.LocalityLbEndpoints{
				Locality: &corev3.Locality{Region: e.Locality.Region, Zone: e.Locality.Zone, SubZone: e.Locality.SubZone},
				Priority: e.Priority,
			}
			groups[k] = g
			cla.Endpoints = append(cla.Endpoints, g)
		}
		g.LbEndpoints = append(g.LbEndpoints, lbEndpoint(e))
	}
	return cla
}

func lbEndpoint(e Endpoint) *endpointv3.LbEndpoint {
	health := e.Health
	if health == corev3.HealthStatus_UNKNOWN {
		health = corev3.HealthStatus_HEALTHY
	}
	lb := &endpointv3.LbEndpoint{
		HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{
			Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
				Address: e.IP, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: e.Port},
			}}},
		}},
		HealthStatus: health,
	}
	if e.Weight > 0 {
		lb.LoadBalancingWeight = wrapperspb.UInt32(e.Weight)
	}
	md := &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{}}
	if len(e.Labels) > 0 {
		fields := map[string]any{}
		for k, v := range e.Labels {
			fields[k] = v
		}
		s, err := structpb.NewStruct(fields)
		if err != nil {
			panic(err) // strings always convert
		}
		md.FilterMetadata["envoy.lb"] = s
	}
	if e.Workload != "" {
		md.FilterMetadata["istio"] = &structpb.Struct{Fields: map[string]*structpb.Value{"workload": structpb.NewStringValue(e.Workload)}}
	}
	if len(md.FilterMetadata) > 0 {
		lb.Metadata = md
	}
	return lb
}

func adsSource() *corev3.ConfigSource {
	return &corev3.ConfigSource{
		ResourceApiVersion:    corev3.ApiVersion_V3,
		ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}},
	}
}

func mustAny(m proto.Message) *anypb.Any {
	a, err := anypb.New(m)
	if err != nil {
		panic(err) // only fails for messages that cannot marshal, never for these
	}
	return a
}
