package xdsresource

import "fmt"

// Type is one of the four xDS resource types a proxyless client watches.
type Type int

// The resource types, in the order a client resolves them: a listener names a
// route configuration, a route names clusters, a cluster names endpoints.
const (
	ListenerType Type = iota
	RouteConfigType
	ClusterType
	EndpointsType
)

// Types lists every Type in resolution order.
var Types = [...]Type{ListenerType, RouteConfigType, ClusterType, EndpointsType}

// The type URLs of the Envoy v3 protos behind each Type.
const (
	ListenerURL    = "type.googleapis.com/envoy.config.listener.v3.Listener"
	RouteConfigURL = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
	ClusterURL     = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
	EndpointsURL   = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
)

// URL returns the type URL used in DiscoveryRequest.type_url.
func (t Type) URL() string {
	switch t {
	case ListenerType:
		return ListenerURL
	case RouteConfigType:
		return RouteConfigURL
	case ClusterType:
		return ClusterURL
	case EndpointsType:
		return EndpointsURL
	}
	return ""
}

// MarshalText renders the type as LDS, RDS, CDS or EDS.
func (t Type) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// String returns the short xDS name of the type: LDS, RDS, CDS or EDS.
func (t Type) String() string {
	switch t {
	case ListenerType:
		return "LDS"
	case RouteConfigType:
		return "RDS"
	case ClusterType:
		return "CDS"
	case EndpointsType:
		return "EDS"
	}
	return fmt.Sprintf("Type(%d)", int(t))
}

// TypeFromURL maps a type URL back to its Type.
func TypeFromURL(url string) (Type, bool) {
	for _, t := range Types {
		if t.URL() == url {
			return t, true
		}
	}
	return 0, false
}

// Resource is implemented by the four validated models: *Listener,
// *RouteConfig, *Cluster and *Endpoints.
type Resource interface {
	// ResourceName is the xDS name of the resource.
	ResourceName() string
	// ResourceType is the xDS type of the resource.
	ResourceType() Type
}
