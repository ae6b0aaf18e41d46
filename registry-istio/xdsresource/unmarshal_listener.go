package xdsresource

import (
	"fmt"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
)

const (
	hcmURL            = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
	routerURL         = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
	faultURL          = "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault"
	rbacURL           = "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC"
	statefulURL       = "type.googleapis.com/envoy.extensions.filters.http.stateful_session.v3.StatefulSession"
	filterConfigURL   = "type.googleapis.com/envoy.config.route.v3.FilterConfig"
	faultFilterName   = "envoy.filters.http.fault"
	tlsTransportName  = "envoy.transport_sockets.tls"
	channelIDStateKey = "io.grpc.channel_id"
)

func unmarshalListener(b []byte) (string, *Listener, error) {
	pb := &listenerv3.Listener{}
	if err := decode(b, pb); err != nil {
		return "", nil, err
	}
	name := pb.GetName()
	if name == "" {
		return "", nil, errNoName
	}
	l, err := listenerFromProto(pb)
	return name, l, err
}

func listenerFromProto(pb *listenerv3.Listener) (*Listener, error) {
	api := pb.GetApiListener().GetApiListener()
	if api == nil {
		if len(pb.GetFilterChains()) == 0 && pb.GetDefaultFilterChain() == nil {
			return nil, fmt.Errorf("neither an api_listener (client side) nor filter chains (server side, %s<ip>:<port>)", InboundListenerPrefix)
		}
		in, err := inboundFromProto(pb)
		if err != nil {
			return nil, err
		}
		return &Listener{Name: pb.GetName(), Inbound: in}, nil
	}
	if api.GetTypeUrl() != hcmURL {
		return nil, fmt.Errorf("api_listener has type %q, want an HttpConnectionManager", api.GetTypeUrl())
	}
	hcm := &hcmv3.HttpConnectionManager{}
	if err := decode(api.GetValue(), hcm); err != nil {
		return nil, fmt.Errorf("api_listener: %w", err)
	}
	l := &Listener{Name: pb.GetName()}
	switch rs := hcm.GetRouteSpecifier().(type) {
	case *hcmv3.HttpConnectionManager_Rds:
		if err := fromADS("rds.config_source", rs.Rds.GetConfigSource()); err != nil {
			return nil, err
		}
		if rs.Rds.GetRouteConfigName() == "" {
			return nil, fmt.Errorf("rds.route_config_name is empty")
		}
		l.RouteConfigName = rs.Rds.GetRouteConfigName()
	case *hcmv3.HttpConnectionManager_RouteConfig:
		rc, err := routeConfigFromProto(rs.RouteConfig)
		if err != nil {
			return nil, fmt.Errorf("inline route_config: %w", err)
		}
		l.InlineRouteConfig = rc
	case nil:
		return nil, fmt.Errorf("HttpConnectionManager has neither rds nor route_config")
	default:
		return nil, fmt.Errorf("HttpConnectionManager route specifier %T is not supported (use rds)", rs)
	}
	d, err := duration("common_http_protocol_options.max_stream_duration", hcm.GetCommonHttpProtocolOptions().GetMaxStreamDuration())
	if err != nil {
		return nil, err
	}
	l.MaxStreamDuration = d
	filters := hcm.GetHttpFilters()
	for i, f := range filters {
		if f.GetName() == "" {
			return nil, fmt.Errorf("http_filters[%d] has no name", i)
		}
		url := f.GetTypedConfig().GetTypeUrl()
		switch url {
		case routerURL:
			if i != len(filters)-1 {
				return nil, fmt.Errorf("http_filters[%d] %q: the router must be the last filter", i, f.GetName())
			}
		case faultURL:
			l.FaultFilter = true
		case rbacURL, statefulURL:
			// Known to istiod; not applied on the client side yet.
		default:
			if !f.GetIsOptional() {
				return nil, fmt.Errorf("http_filters[%d] %q has unsupported type %q and is not optional", i, f.GetName(), url)
			}
		}
		l.HTTPFilters = append(l.HTTPFilters, f.GetName())
	}
	if len(filters) == 0 || filters[len(filters)-1].GetTypedConfig().GetTypeUrl() != routerURL {
		return nil, fmt.Errorf("http_filters do not end with the router filter (%s)", routerURL)
	}
	return l, nil
}
