package xdsresource_test

import (
	"net/netip"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	rbacv3 "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	rbachttpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/rbac/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	exprpb "google.golang.org/genproto/googleapis/api/expr/v1alpha1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/shoalmesh/shoal/registry-istio/xdsresource"
	"github.com/shoalmesh/shoal/registry-istio/xdstest"
)

const inboundIP = "10.0.0.7"

// istiodPolicies are the RBAC filters the probe of the real istiod showed
// for one DENY and one ALLOW AuthorizationPolicy (see DESIGN.md).
func istiodPolicies() []*hcmv3.HttpFilter {
	deny := xdstest.RBACFilter(rbacv3.RBAC_DENY, map[string]*rbacv3.Policy{
		"default-deny-admin-0": xdstest.RBACPolicy([]*rbacv3.Permission{orPerm(xdstest.PathExact("/greet.GreetService/Admin"))}, nil),
		"default-deny-admin-1": xdstest.RBACPolicy(
			[]*rbacv3.Permission{orPerm(&rbacv3.Permission{Rule: &rbacv3.Permission_DestinationPort{DestinationPort: 20000}})},
			[]*rbacv3.Principal{
				orPrin(xdstest.PrincipalRegex(".*/ns/evil/.*")),
				orPrin(&rbacv3.Principal{Identifier: &rbacv3.Principal_RemoteIp{RemoteIp: &corev3.CidrRange{AddressPrefix: "10.0.0.0", PrefixLen: wrapperspb.UInt32(8)}}}),
				orPrin(&rbacv3.Principal{Identifier: &rbacv3.Principal_DirectRemoteIp{DirectRemoteIp: &corev3.CidrRange{AddressPrefix: "10.1.0.0", PrefixLen: wrapperspb.UInt32(16)}}}),
			}),
	})
	allow := xdstest.RBACFilter(rbacv3.RBAC_ALLOW, map[string]*rbacv3.Policy{
		"default-allow-a-0": xdstest.RBACPolicy(
			[]*rbacv3.Permission{
				orPerm(&rbacv3.Permission{Rule: &rbacv3.Permission_Header{Header: &routev3.HeaderMatcher{Name: ":method", HeaderMatchSpecifier: &routev3.HeaderMatcher_StringMatch{StringMatch: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: "POST"}}}}}}),
				orPerm(xdstest.PathPrefix("/greet.GreetService/")),
				{Rule: &rbacv3.Permission_NotRule{NotRule: orPerm(xdstest.PathExact("/greet.GreetService/Secret"))}},
			},
			[]*rbacv3.Principal{
				orPrin(xdstest.PrincipalName("spiffe://cluster.local/ns/default/sa/a")),
				orPrin(&rbacv3.Principal{Identifier: &rbacv3.Principal_Header{Header: &routev3.HeaderMatcher{Name: "x-tenant", HeaderMatchSpecifier: &routev3.HeaderMatcher_StringMatch{StringMatch: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: "blue"}}}}}}),
			}),
	})
	return []*hcmv3.HttpFilter{deny, allow}
}

func orPerm(p ...*rbacv3.Permission) *rbacv3.Permission {
	return &rbacv3.Permission{Rule: &rbacv3.Permission_OrRules{OrRules: &rbacv3.Permission_Set{Rules: p}}}
}

func orPrin(p ...*rbacv3.Principal) *rbacv3.Principal {
	return &rbacv3.Principal{Identifier: &rbacv3.Principal_OrIds{OrIds: &rbacv3.Principal_Set{Ids: p}}}
}

func inbound(t *testing.T, r xdsresource.Resource) *xdsresource.InboundListener {
	t.Helper()
	l := r.(*xdsresource.Listener)
	if l.Inbound == nil {
		t.Fatalf("listener %q has no Inbound part", l.Name)
	}
	return l.Inbound
}

// mutate returns an istiod-shaped mTLS listener changed by f.
func mutate(f func(l *listenerv3.Listener, hcm *hcmv3.HttpConnectionManager, tc *tlsv3.DownstreamTlsContext)) func() proto.Message {
	return func() proto.Message {
		l := xdstest.InboundListener(inboundIP, port, true, istiodPolicies()...)
		fc := l.FilterChains[0]
		hcm := &hcmv3.HttpConnectionManager{}
		tc := &tlsv3.DownstreamTlsContext{}
		if err := fc.Filters[0].GetTypedConfig().UnmarshalTo(hcm); err != nil {
			panic(err)
		}
		if err := fc.TransportSocket.GetTypedConfig().UnmarshalTo(tc); err != nil {
			panic(err)
		}
		f(l, hcm, tc)
		a, _ := anypb.New(hcm)
		fc.Filters[0].ConfigType = &listenerv3.Filter_TypedConfig{TypedConfig: a}
		if fc.TransportSocket != nil {
			ta, _ := anypb.New(tc)
			fc.TransportSocket.ConfigType = &corev3.TransportSocket_TypedConfig{TypedConfig: ta}
		}
		return l
	}
}

func withRBAC(p *rbacv3.Policy) func(*listenerv3.Listener, *hcmv3.HttpConnectionManager, *tlsv3.DownstreamTlsContext) {
	return func(_ *listenerv3.Listener, hcm *hcmv3.HttpConnectionManager, _ *tlsv3.DownstreamTlsContext) {
		hcm.HttpFilters = append([]*hcmv3.HttpFilter{xdstest.RBACFilter(rbacv3.RBAC_ALLOW, map[string]*rbacv3.Policy{"ns-p-0": p})}, hcm.HttpFilters...)
	}
}

func TestUnmarshalInboundListener(t *testing.T) {
	deep := xdstest.PathExact("/x")
	for range 40 {
		deep = &rbacv3.Permission{Rule: &rbacv3.Permission_NotRule{NotRule: deep}}
	}
	run(t, []testCase{
		{
			name: "plaintext as istiod sends it without PeerAuthentication",
			typ:  xdsresource.ListenerType,
			msg:  func() proto.Message { return xdstest.InboundListener(inboundIP, port, false) },
			check: func(t *testing.T, r xdsresource.Resource) {
				in := inbound(t, r)
				if in.Address != "10.0.0.7:20000" || in.FilterChain.Name != "inbound-plaintext" || in.FilterChain.TLS != nil || len(in.FilterChain.RBAC) != 0 {
					t.Fatalf("got %+v", in)
				}
			},
		},
		{
			name: "mutual TLS as istiod sends it under STRICT",
			typ:  xdsresource.ListenerType,
			msg:  func() proto.Message { return xdstest.InboundListener(inboundIP, port, true) },
			check: func(t *testing.T, r xdsresource.Resource) {
				tls := inbound(t, r).FilterChain.TLS
				want := xdsresource.DownstreamTLS{
					RequireClientCertificate: true,
					Certificate:              xdsresource.CertificateProvider{InstanceName: "default", CertificateName: "default"},
					Root:                     xdsresource.CertificateProvider{InstanceName: "default", CertificateName: "ROOTCA"},
				}
				if tls == nil || tls.RequireClientCertificate != want.RequireClientCertificate || tls.Certificate != want.Certificate || tls.Root != want.Root || len(tls.SubjectAltNames) != 0 {
					t.Fatalf("TLS = %+v, want %+v", tls, want)
				}
			},
		},
		{
			name: "RBAC DENY then ALLOW as istiod sends AuthorizationPolicies",
			typ:  xdsresource.ListenerType,
			msg:  func() proto.Message { return xdstest.InboundListener(inboundIP, port, true, istiodPolicies()...) },
			check: func(t *testing.T, r xdsresource.Resource) {
				rb := inbound(t, r).FilterChain.RBAC
				if len(rb) != 2 || rb[0].FilterName != xdstest.RBACDenyFilterName || rb[0].Action != xdsresource.RBACDeny ||
					rb[1].FilterName != xdstest.RBACFilterName || rb[1].Action != xdsresource.RBACAllow {
					t.Fatalf("RBAC filters = %+v", rb)
				}
				if n := len(rb[0].Policies); n != 2 || rb[0].Policies[0].Name != "default-deny-admin-0" || rb[0].Policies[1].Name != "default-deny-admin-1" {
					t.Fatalf("DENY policies = %+v, want default-deny-admin-0 and -1 in order", rb[0].Policies)
				}
				ips := rb[0].Policies[1].Principals[0].Rules
				if ips[1].Rules[0].Kind != xdsresource.RuleSourceIP || ips[1].Rules[0].CIDR != netip.MustParsePrefix("10.0.0.0/8") ||
					ips[2].Rules[0].CIDR != netip.MustParsePrefix("10.1.0.0/16") {
					t.Fatalf("remote_ip / direct_remote_ip principals = %+v", ips)
				}
				allow := rb[1].Policies[0]
				perms := allow.Permissions[0]
				if perms.Kind != xdsresource.RuleAnd || len(perms.Rules) != 3 || perms.Rules[0].Rules[0].Kind != xdsresource.RuleHeader ||
					perms.Rules[0].Rules[0].Header.Name != ":method" || perms.Rules[1].Rules[0].Kind != xdsresource.RulePath ||
					perms.Rules[1].Rules[0].String.Kind != xdsresource.MatchPrefix || perms.Rules[2].Kind != xdsresource.RuleNot {
					t.Fatalf("ALLOW permissions = %+v", perms)
				}
				prin := allow.Principals[0].Rules[0].Rules[0]
				if prin.Kind != xdsresource.RuleAuthenticated || !prin.HasString || prin.String.Value != "spiffe://cluster.local/ns/default/sa/a" {
					t.Fatalf("ALLOW principal = %+v", prin)
				}
			},
		},
		{
			name: "an RBAC filter without rules is disabled; shadow rules are ignored",
			typ:  xdsresource.ListenerType,
			msg: func() proto.Message {
				shadow := &rbachttpv3.RBAC{ShadowRules: &rbacv3.RBAC{Action: rbacv3.RBAC_DENY}}
				f := &hcmv3.HttpFilter{Name: "shadow", ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: toAny(t, shadow)}}
				return xdstest.InboundListener(inboundIP, port, false, f)
			},
			check: func(t *testing.T, r xdsresource.Resource) {
				if rb := inbound(t, r).FilterChain.RBAC; len(rb) != 1 || !rb[0].Disabled {
					t.Fatalf("RBAC = %+v, want one disabled filter", rb)
				}
			},
		},
		{
			name: "JWT principals (requestPrincipals) cannot be enforced", typ: xdsresource.ListenerType, wantErr: "metadata principals",
			msg: mutate(withRBAC(xdstest.RBACPolicy(nil, []*rbacv3.Principal{{Identifier: &rbacv3.Principal_Metadata{Metadata: &matcherv3.MetadataMatcher{Filter: "envoy.filters.http.jwt_authn"}}}}))), //nolint:staticcheck // what istiod sends for requestPrincipals
		},
		{
			name: "path templates are refused", typ: xdsresource.ListenerType, wantErr: "uri_template",
			msg: mutate(withRBAC(xdstest.RBACPolicy([]*rbacv3.Permission{{Rule: &rbacv3.Permission_UriTemplate{UriTemplate: &corev3.TypedExtensionConfig{Name: "uri-template", TypedConfig: toAny(t, &structpb.Struct{})}}}}, nil))),
		},
		{
			name: "nesting is bounded", typ: xdsresource.ListenerType, wantErr: "nested deeper",
			msg: mutate(withRBAC(xdstest.RBACPolicy([]*rbacv3.Permission{deep}, nil))),
		},
		{
			name: "bad CIDR", typ: xdsresource.ListenerType, wantErr: "prefix_len 40",
			msg: mutate(withRBAC(xdstest.RBACPolicy(nil, []*rbacv3.Principal{{Identifier: &rbacv3.Principal_DirectRemoteIp{DirectRemoteIp: &corev3.CidrRange{AddressPrefix: "10.0.0.0", PrefixLen: wrapperspb.UInt32(40)}}}}))),
		},
		{
			name: "bad regex", typ: xdsresource.ListenerType, wantErr: "does not compile",
			msg: mutate(withRBAC(xdstest.RBACPolicy(nil, []*rbacv3.Principal{xdstest.PrincipalRegex("(")}))),
		},
		{
			name: "CEL conditions are refused", typ: xdsresource.ListenerType, wantErr: "CEL",
			msg: mutate(func(_ *listenerv3.Listener, hcm *hcmv3.HttpConnectionManager, _ *tlsv3.DownstreamTlsContext) {
				p := xdstest.RBACPolicy(nil, nil)
				p.Condition = celTrue()
				cfg := &rbachttpv3.RBAC{Rules: &rbacv3.RBAC{Policies: map[string]*rbacv3.Policy{"p": p}}}
				hcm.HttpFilters = append([]*hcmv3.HttpFilter{{Name: "cel", ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: toAny(t, cfg)}}}, hcm.HttpFilters...)
			}),
		},
		{
			name: "LOG action is refused", typ: xdsresource.ListenerType, wantErr: "rules.action LOG",
			msg: mutate(func(_ *listenerv3.Listener, hcm *hcmv3.HttpConnectionManager, _ *tlsv3.DownstreamTlsContext) {
				cfg := &rbachttpv3.RBAC{Rules: &rbacv3.RBAC{Action: rbacv3.RBAC_LOG}}
				hcm.HttpFilters = append([]*hcmv3.HttpFilter{{Name: "log", ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: toAny(t, cfg)}}}, hcm.HttpFilters...)
			}),
		},
		{
			name: "server-only TLS is refused", typ: xdsresource.ListenerType, wantErr: "require_client_certificate is not set",
			msg: mutate(func(_ *listenerv3.Listener, _ *hcmv3.HttpConnectionManager, tc *tlsv3.DownstreamTlsContext) {
				tc.RequireClientCertificate = nil
			}),
		},
		{
			name: "TLS without roots is refused", typ: xdsresource.ListenerType, wantErr: "without a validation context",
			msg: mutate(func(_ *listenerv3.Listener, _ *hcmv3.HttpConnectionManager, tc *tlsv3.DownstreamTlsContext) {
				tc.CommonTlsContext.ValidationContextType = nil
			}),
		},
		{
			name: "inline certificates are refused", typ: xdsresource.ListenerType, wantErr: "only certificate provider instances",
			msg: mutate(func(_ *listenerv3.Listener, _ *hcmv3.HttpConnectionManager, tc *tlsv3.DownstreamTlsContext) {
				tc.CommonTlsContext.TlsCertificates = []*tlsv3.TlsCertificate{{}}
			}),
		},
		{
			name: "a second filter chain is refused", typ: xdsresource.ListenerType, wantErr: "2 filter chains",
			msg: mutate(func(l *listenerv3.Listener, _ *hcmv3.HttpConnectionManager, _ *tlsv3.DownstreamTlsContext) {
				l.DefaultFilterChain = xdstest.InboundListener(inboundIP, port, false).FilterChains[0]
			}),
		},
		{
			name: "a filter chain match is refused", typ: xdsresource.ListenerType, wantErr: "filter_chain_match",
			msg: mutate(func(l *listenerv3.Listener, _ *hcmv3.HttpConnectionManager, _ *tlsv3.DownstreamTlsContext) {
				l.FilterChains[0].FilterChainMatch = &listenerv3.FilterChainMatch{TransportProtocol: "raw_buffer"}
			}),
		},
		{
			name: "routes other than the catch-all are refused", typ: xdsresource.ListenerType, wantErr: "only a catch-all route",
			msg: mutate(func(_ *listenerv3.Listener, hcm *hcmv3.HttpConnectionManager, _ *tlsv3.DownstreamTlsContext) {
				hcm.GetRouteConfig().VirtualHosts[0].Routes[0].Match.PathSpecifier = &routev3.RouteMatch_Prefix{Prefix: "/greet"}
			}),
		},
		{
			name: "an unknown required HTTP filter is refused", typ: xdsresource.ListenerType, wantErr: "does not implement",
			msg: mutate(func(_ *listenerv3.Listener, hcm *hcmv3.HttpConnectionManager, _ *tlsv3.DownstreamTlsContext) {
				hcm.HttpFilters = append([]*hcmv3.HttpFilter{{Name: "x", ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: toAny(t, &structpb.Struct{})}}}, hcm.HttpFilters...)
			}),
		},
		{
			name: "no address", typ: xdsresource.ListenerType, wantErr: "socket_address is missing",
			msg: mutate(func(l *listenerv3.Listener, _ *hcmv3.HttpConnectionManager, _ *tlsv3.DownstreamTlsContext) {
				l.Address = nil
			}),
		},
		{
			name: "neither API listener nor filter chains", typ: xdsresource.ListenerType, wantErr: "neither an api_listener",
			msg: func() proto.Message { return &listenerv3.Listener{Name: "x"} },
		},
	})
}

func celTrue() *exprpb.Expr {
	return &exprpb.Expr{ExprKind: &exprpb.Expr_ConstExpr{ConstExpr: &exprpb.Constant{ConstantKind: &exprpb.Constant_BoolValue{BoolValue: true}}}}
}
