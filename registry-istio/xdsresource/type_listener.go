package xdsresource

import "time"

// Listener is a validated listener: a client-side (API) listener, the entry
// point istiod's proxyless generator returns for a `host:port` name, or a
// server-side one (Inbound set) for an InboundListenerPrefix name.
type Listener struct {
	// Inbound is set for a server-side listener; the client-side fields
	// below are then empty.
	Inbound *InboundListener
	// Name is the listener name, `host:port` for istiod's grpc generator.
	Name string
	// RouteConfigName names the RouteConfiguration to fetch over RDS. It is
	// empty when the routes are inline (InlineRouteConfig is set).
	RouteConfigName string
	// InlineRouteConfig holds routes sent inside the listener, if any.
	InlineRouteConfig *RouteConfig
	// HTTPFilters lists the HTTP filter names in order, the router last.
	HTTPFilters []string
	// FaultFilter reports whether the fault injection filter is installed, so
	// per-route fault policies apply.
	FaultFilter bool
	// MaxStreamDuration is the HCM-wide stream limit (0: none).
	MaxStreamDuration time.Duration
}

// ResourceName implements Resource.
func (l *Listener) ResourceName() string { return l.Name }

// ResourceType implements Resource.
func (l *Listener) ResourceType() Type { return ListenerType }
