package xdstest

import (
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
)

// Subset is one DestinationRule subset of a Split: its name, its share of
// the calls and its endpoints.
type Subset struct {
	Name      string
	Weight    uint32
	Endpoints []Endpoint
}

// Split returns what istiod sends for a service whose VirtualService splits
// calls by weight among DestinationRule subsets: the listener, a route
// configuration with one weighted route (edit it through the returned
// Resources.Routes[0].VirtualHosts[0].Routes[0]), the default cluster, one
// cluster per subset (outbound|port|subset|host) and their endpoints.
func Split(host string, port uint32, subsets ...Subset) Resources {
	r := Resources{
		Listeners: []*listenerv3.Listener{Listener(host, port)},
		Clusters:  []*clusterv3.Cluster{Cluster(host, "", port)},
	}
	var all []Endpoint
	var weighted []WeightedCluster
	for _, s := range subsets {
		name := ClusterName(host, s.Name, port)
		weighted = append(weighted, WeightedCluster{Name: name, Weight: s.Weight})
		r.Clusters = append(r.Clusters, Cluster(host, s.Name, port))
		r.Endpoints = append(r.Endpoints, ClusterLoadAssignment(name, s.Endpoints...))
		all = append(all, s.Endpoints...)
	}
	r.Endpoints = append([]*endpointv3.ClusterLoadAssignment{ClusterLoadAssignment(ClusterName(host, "", port), all...)}, r.Endpoints...)
	r.Routes = []*routev3.RouteConfiguration{RouteConfig(host, port, WeightedRoute("split", nil, weighted...))}
	return r
}

// PrependRoute puts route first in the virtual host of r's first route
// configuration, so it matches before the routes Split made.
func PrependRoute(r Resources, route *routev3.Route) {
	vh := r.Routes[0].VirtualHosts[0]
	vh.Routes = append([]*routev3.Route{route}, vh.Routes...)
}
