package xdstest

import (
	"net"
	"strconv"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	rbacv3 "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	rbachttpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/rbac/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// The RBAC HTTP filter names istiod's grpc generator uses.
const (
	RBACFilterName     = "envoy.filters.http.rbac"
	RBACDenyFilterName = "envoy.filters.http.rbac.DENY"
)

// InboundListenerName is the name of the server-side listener for ip:port.
func InboundListenerName(ip string, port uint32) string {
	return "xds.istio.io/grpc/lds/inbound/" + net.JoinHostPort(ip, strconv.Itoa(int(port)))
}

// InboundListener returns the server-side listener istiod's grpc generator
// sends for ip:port: one filter chain, inbound-plaintext, or inbound-mtls
// with a DownstreamTlsContext requiring client certificates (certificate
// provider instances default/default and default/ROOTCA) when mtls is
// set; an HTTP connection manager with the catch-all non-forwarding route,
// the given RBAC filters (see RBACFilter) and the router.
func InboundListener(ip string, port uint32, mtls bool, rbac ...*hcmv3.HttpFilter) *listenerv3.Listener {
	filters := append(append([]*hcmv3.HttpFilter{}, rbac...),
		&hcmv3.HttpFilter{Name: "envoy.filters.http.router", ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: mustAny(&routerv3.Router{})}})
	suffix := "plaintext"
	if mtls {
		suffix = "mtls"
	}
	hcm := &hcmv3.HttpConnectionManager{
		RouteSpecifier: &hcmv3.HttpConnectionManager_RouteConfig{RouteConfig: &routev3.RouteConfiguration{
			Name: "inbound",
			VirtualHosts: []*routev3.VirtualHost{{
				Domains: []string{"*"},
				Routes: []*routev3.Route{{
					Match:  &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}},
					Action: &routev3.Route_NonForwardingAction{NonForwardingAction: &routev3.NonForwardingAction{}},
				}},
			}},
		}},
		HttpFilters: filters,
	}
	fc := &listenerv3.FilterChain{
		Name: "inbound-" + suffix,
		Filters: []*listenerv3.Filter{{
			Name:       "inbound-hcm" + suffix,
			ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: mustAny(hcm)},
		}},
	}
	if mtls {
		fc.TransportSocket = &corev3.TransportSocket{
			Name:       "envoy.transport_sockets.tls",
			ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: mustAny(ServerMutualTLS())},
		}
	}
	return &listenerv3.Listener{
		Name: InboundListenerName(ip, port),
		Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
			Address: ip, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port},
		}}},
		FilterChains: []*listenerv3.FilterChain{fc},
	}
}

// ServerMutualTLS is the DownstreamTlsContext istiod sends under
// PeerAuthentication STRICT: both the current and the deprecated
// certificate provider fields, client certificates required, no SAN
// matchers.
func ServerMutualTLS() *tlsv3.DownstreamTlsContext {
	return &tlsv3.DownstreamTlsContext{
		CommonTlsContext: &tlsv3.CommonTlsContext{
			TlsCertificateProviderInstance:            &tlsv3.CertificateProviderPluginInstance{InstanceName: "default", CertificateName: "default"},
			TlsCertificateCertificateProviderInstance: &tlsv3.CommonTlsContext_CertificateProviderInstance{InstanceName: "default", CertificateName: "default"}, //nolint:staticcheck // istiod sends it
			ValidationContextType: &tlsv3.CommonTlsContext_CombinedValidationContext{
				CombinedValidationContext: &tlsv3.CommonTlsContext_CombinedCertificateValidationContext{
					DefaultValidationContext: &tlsv3.CertificateValidationContext{
						CaCertificateProviderInstance: &tlsv3.CertificateProviderPluginInstance{InstanceName: "default", CertificateName: "ROOTCA"},
					},
					ValidationContextCertificateProviderInstance: &tlsv3.CommonTlsContext_CertificateProviderInstance{InstanceName: "default", CertificateName: "ROOTCA"}, //nolint:staticcheck // istiod sends it
				},
			},
		},
		RequireClientCertificate: wrapperspb.Bool(true),
	}
}

// RBACFilter is an RBAC HTTP filter as istiod builds it from the
// AuthorizationPolicies of one action: name RBACDenyFilterName for DENY,
// RBACFilterName for ALLOW; policies keyed <namespace>-<policy>-<rule>.
func RBACFilter(action rbacv3.RBAC_Action, policies map[string]*rbacv3.Policy) *hcmv3.HttpFilter {
	name := RBACFilterName
	if action == rbacv3.RBAC_DENY {
		name = RBACDenyFilterName
	}
	cfg := &rbachttpv3.RBAC{Rules: &rbacv3.RBAC{Action: action, Policies: policies}}
	return &hcmv3.HttpFilter{Name: name, ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: mustAny(cfg)}}
}

// RBACPolicy is one rule of an AuthorizationPolicy in istiod's shape: the
// permissions and the principals each AND-ed inside one OR entry.
func RBACPolicy(permissions []*rbacv3.Permission, principals []*rbacv3.Principal) *rbacv3.Policy {
	if len(permissions) == 0 {
		permissions = []*rbacv3.Permission{{Rule: &rbacv3.Permission_Any{Any: true}}}
	}
	if len(principals) == 0 {
		principals = []*rbacv3.Principal{{Identifier: &rbacv3.Principal_Any{Any: true}}}
	}
	return &rbacv3.Policy{
		Permissions: []*rbacv3.Permission{{Rule: &rbacv3.Permission_AndRules{AndRules: &rbacv3.Permission_Set{Rules: permissions}}}},
		Principals:  []*rbacv3.Principal{{Identifier: &rbacv3.Principal_AndIds{AndIds: &rbacv3.Principal_Set{Ids: principals}}}},
	}
}

// PrincipalName is `from.source.principals` / `serviceAccounts`: the
// client's SPIFFE ID matched exactly (spiffe://cluster.local/ns/x/sa/y).
func PrincipalName(exact string) *rbacv3.Principal {
	return &rbacv3.Principal{Identifier: &rbacv3.Principal_Authenticated_{Authenticated: &rbacv3.Principal_Authenticated{
		PrincipalName: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: exact}},
	}}}
}

// PrincipalRegex is `from.source.namespaces` and wildcard principals: the
// SPIFFE ID matched by an RE2 expression (istiod: ".*/ns/<ns>/.*").
func PrincipalRegex(re string) *rbacv3.Principal {
	return &rbacv3.Principal{Identifier: &rbacv3.Principal_Authenticated_{Authenticated: &rbacv3.Principal_Authenticated{
		PrincipalName: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{Regex: re}}},
	}}}
}

// PathExact is `to.operation.paths` without a wildcard.
func PathExact(path string) *rbacv3.Permission {
	return &rbacv3.Permission{Rule: &rbacv3.Permission_UrlPath{UrlPath: &matcherv3.PathMatcher{Rule: &matcherv3.PathMatcher_Path{
		Path: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: path}},
	}}}}
}

// PathPrefix is `to.operation.paths` with a trailing `*`.
func PathPrefix(prefix string) *rbacv3.Permission {
	return &rbacv3.Permission{Rule: &rbacv3.Permission_UrlPath{UrlPath: &matcherv3.PathMatcher{Rule: &matcherv3.PathMatcher_Path{
		Path: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Prefix{Prefix: prefix}},
	}}}}
}
