package xdsresource

import (
	"fmt"
	"net"
	"net/netip"
	"sort"
	"strconv"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	rbacv3 "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	rbachttpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/rbac/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
)

const downstreamTLSURL = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext"

// maxRuleDepth bounds the nesting of RBAC permissions and principals, so a
// hostile resource cannot exhaust the stack (istiod nests four levels).
const maxRuleDepth = 32

// inboundFromProto validates a server-side listener. Everything it cannot
// enforce is an error, so the client NACKs and keeps the last good version
// rather than serving with weaker security than istiod asked for.
func inboundFromProto(pb *listenerv3.Listener) (*InboundListener, error) {
	sa := pb.GetAddress().GetSocketAddress()
	if sa == nil {
		return nil, fmt.Errorf("address.socket_address is missing: a server listener names the address it serves")
	}
	ip, err := netip.ParseAddr(sa.GetAddress())
	if err != nil {
		return nil, fmt.Errorf("address.socket_address.address %q is not an IP address", sa.GetAddress())
	}
	port := sa.GetPortValue()
	if port == 0 || port > 65535 {
		return nil, fmt.Errorf("address.socket_address.port_value %d is not a port", port)
	}
	if len(pb.GetListenerFilters()) > 0 {
		return nil, fmt.Errorf("listener_filters are not supported by a proxyless server")
	}
	if pb.GetUseOriginalDst().GetValue() {
		return nil, fmt.Errorf("use_original_dst is not supported by a proxyless server")
	}
	chains := pb.GetFilterChains()
	if pb.GetDefaultFilterChain() != nil {
		chains = append(chains[:len(chains):len(chains)], pb.GetDefaultFilterChain())
	}
	if len(chains) != 1 {
		return nil, fmt.Errorf("%d filter chains (default included): a Shoal server applies exactly one, as istiod sends", len(chains))
	}
	fc, err := filterChainFromProto(chains[0])
	if err != nil {
		return nil, fmt.Errorf("filter chain %q: %w", chains[0].GetName(), err)
	}
	return &InboundListener{Address: net.JoinHostPort(ip.String(), strconv.Itoa(int(port))), FilterChain: fc}, nil
}

func filterChainFromProto(pb *listenerv3.FilterChain) (FilterChain, error) {
	fc := FilterChain{Name: pb.GetName()}
	if m := pb.GetFilterChainMatch(); m != nil && !isEmptyChainMatch(m) {
		return fc, fmt.Errorf("filter_chain_match is not supported (istiod sends none to proxyless servers)")
	}
	if ts := pb.GetTransportSocket(); ts != nil {
		tls, err := downstreamTLSFromProto(ts)
		if err != nil {
			return fc, fmt.Errorf("transport_socket: %w", err)
		}
		fc.TLS = tls
	}
	filters := pb.GetFilters()
	if len(filters) != 1 || filters[0].GetTypedConfig().GetTypeUrl() != hcmURL {
		return fc, fmt.Errorf("want exactly one filter, an HttpConnectionManager; got %d filters", len(filters))
	}
	hcm := &hcmv3.HttpConnectionManager{}
	if err := decode(filters[0].GetTypedConfig().GetValue(), hcm); err != nil {
		return fc, fmt.Errorf("filters[0]: %w", err)
	}
	if err := checkInboundRoutes(hcm); err != nil {
		return fc, err
	}
	rbac, err := inboundHTTPFilters(hcm.GetHttpFilters())
	if err != nil {
		return fc, err
	}
	fc.RBAC = rbac
	return fc, nil
}

func isEmptyChainMatch(m *listenerv3.FilterChainMatch) bool {
	return m.GetDestinationPort() == nil && len(m.GetPrefixRanges()) == 0 && len(m.GetDirectSourcePrefixRanges()) == 0 &&
		len(m.GetSourcePrefixRanges()) == 0 && len(m.GetSourcePorts()) == 0 && len(m.GetServerNames()) == 0 &&
		m.GetTransportProtocol() == "" && len(m.GetApplicationProtocols()) == 0 &&
		m.GetSourceType() == listenerv3.FilterChainMatch_ANY && m.GetAddressSuffix() == "" && m.GetSuffixLen() == nil
}

// checkInboundRoutes accepts what istiod sends: inline routes whose first
// match takes every path with a non-forwarding action. Anything else would
// route or refuse calls on the server, which is not implemented.
func checkInboundRoutes(hcm *hcmv3.HttpConnectionManager) error {
	rs, ok := hcm.GetRouteSpecifier().(*hcmv3.HttpConnectionManager_RouteConfig)
	if !ok {
		return fmt.Errorf("the HttpConnectionManager must carry inline routes (route_config), as istiod's inbound listener does")
	}
	for _, vh := range rs.RouteConfig.GetVirtualHosts() {
		for _, r := range vh.GetRoutes() {
			if len(r.GetTypedPerFilterConfig()) > 0 {
				return fmt.Errorf("route_config: per-route filter configuration (e.g. RBAC overrides) is not supported")
			}
		}
	}
	vhs := rs.RouteConfig.GetVirtualHosts()
	if len(vhs) == 1 && len(vhs[0].GetDomains()) == 1 && vhs[0].GetDomains()[0] == "*" && len(vhs[0].GetRoutes()) > 0 {
		first := vhs[0].GetRoutes()[0]
		m := first.GetMatch()
		if p, isPrefix := m.GetPathSpecifier().(*routev3.RouteMatch_Prefix); isPrefix && (p.Prefix == "/" || p.Prefix == "") &&
			len(m.GetHeaders()) == 0 && m.GetRuntimeFraction() == nil && len(m.GetQueryParameters()) == 0 &&
			first.GetNonForwardingAction() != nil {
			return nil
		}
	}
	return fmt.Errorf("route_config: only a catch-all route with a non_forwarding_action is supported on a server (domains [*], prefix /), as istiod sends")
}

func inboundHTTPFilters(filters []*hcmv3.HttpFilter) ([]RBAC, error) {
	var out []RBAC
	for i, f := range filters {
		if f.GetName() == "" {
			return nil, fmt.Errorf("http_filters[%d] has no name", i)
		}
		switch url := f.GetTypedConfig().GetTypeUrl(); url {
		case routerURL:
			if i != len(filters)-1 {
				return nil, fmt.Errorf("http_filters[%d] %q: the router must be the last filter", i, f.GetName())
			}
		case rbacURL:
			r, err := rbacFilterFromProto(f.GetName(), f.GetTypedConfig().GetValue())
			if err != nil {
				return nil, fmt.Errorf("http_filters[%d] %q: %w", i, f.GetName(), err)
			}
			out = append(out, r)
		default:
			if !f.GetIsOptional() {
				return nil, fmt.Errorf("http_filters[%d] %q has type %q, which a Shoal server does not implement, and is not optional", i, f.GetName(), url)
			}
		}
	}
	if len(filters) == 0 || filters[len(filters)-1].GetTypedConfig().GetTypeUrl() != routerURL {
		return nil, fmt.Errorf("http_filters do not end with the router filter (%s)", routerURL)
	}
	return out, nil
}

func downstreamTLSFromProto(ts *corev3.TransportSocket) (*DownstreamTLS, error) {
	if ts.GetTypedConfig().GetTypeUrl() != downstreamTLSURL {
		return nil, fmt.Errorf("type %q is not supported (want %s)", ts.GetTypedConfig().GetTypeUrl(), downstreamTLSURL)
	}
	pb := &tlsv3.DownstreamTlsContext{}
	if err := decode(ts.GetTypedConfig().GetValue(), pb); err != nil {
		return nil, err
	}
	if !pb.GetRequireClientCertificate().GetValue() {
		return nil, fmt.Errorf("require_client_certificate is not set: server-only TLS is not supported (istiod sends mutual TLS only)")
	}
	if pb.GetRequireSni().GetValue() {
		return nil, fmt.Errorf("require_sni is not supported")
	}
	if pb.GetOcspStaplePolicy() != tlsv3.DownstreamTlsContext_LENIENT_STAPLING {
		return nil, fmt.Errorf("ocsp_staple_policy %s is not supported", pb.GetOcspStaplePolicy())
	}
	common := pb.GetCommonTlsContext()
	if common == nil {
		return nil, fmt.Errorf("common_tls_context is missing")
	}
	if len(common.GetTlsCertificates()) > 0 || len(common.GetTlsCertificateSdsSecretConfigs()) > 0 || common.GetTlsParams() != nil ||
		common.GetCustomHandshaker() != nil || common.GetCustomTlsCertificateSelector() != nil {
		return nil, fmt.Errorf("common_tls_context: only certificate provider instances are supported (no inline or SDS certificates, tls_params or custom handshakers)")
	}
	t := &DownstreamTLS{RequireClientCertificate: true}
	switch {
	case common.GetTlsCertificateProviderInstance() != nil:
		p := common.GetTlsCertificateProviderInstance()
		t.Certificate = CertificateProvider{p.GetInstanceName(), p.GetCertificateName()}
	case common.GetTlsCertificateCertificateProviderInstance() != nil: //nolint:staticcheck // istiod sends the deprecated field too, older servers only it
		p := common.GetTlsCertificateCertificateProviderInstance() //nolint:staticcheck // as above
		t.Certificate = CertificateProvider{p.GetInstanceName(), p.GetCertificateName()}
	default:
		return nil, fmt.Errorf("common_tls_context names no certificate provider instance for the server's certificate")
	}
	var vc *tlsv3.CertificateValidationContext
	switch v := common.GetValidationContextType().(type) {
	case *tlsv3.CommonTlsContext_ValidationContext:
		vc = v.ValidationContext
	case *tlsv3.CommonTlsContext_CombinedValidationContext:
		vc = v.CombinedValidationContext.GetDefaultValidationContext()
		if vc.GetCaCertificateProviderInstance() == nil {
			if p := v.CombinedValidationContext.GetValidationContextCertificateProviderInstance(); p != nil { //nolint:staticcheck // deprecated, still sent by istiod
				t.Root = CertificateProvider{p.GetInstanceName(), p.GetCertificateName()}
			}
		}
		if v.CombinedValidationContext.GetValidationContextSdsSecretConfig() != nil {
			return nil, fmt.Errorf("validation_context_sds_secret_config is not supported")
		}
	case *tlsv3.CommonTlsContext_ValidationContextCertificateProviderInstance:
		p := v.ValidationContextCertificateProviderInstance //nolint:staticcheck // deprecated, read for older servers
		t.Root = CertificateProvider{p.GetInstanceName(), p.GetCertificateName()}
	case nil:
		return nil, fmt.Errorf("require_client_certificate without a validation context: nothing to verify clients against")
	default:
		return nil, fmt.Errorf("validation context %T is not supported", v)
	}
	if vc != nil {
		if p := vc.GetCaCertificateProviderInstance(); p != nil {
			t.Root = CertificateProvider{p.GetInstanceName(), p.GetCertificateName()}
		}
		if vc.GetTrustedCa() != nil || vc.GetSystemRootCerts() != nil || vc.GetWatchedDirectory() != nil || len(vc.GetVerifyCertificateSpki()) > 0 ||
			len(vc.GetVerifyCertificateHash()) > 0 || vc.GetCrl() != nil || vc.GetAllowExpiredCertificate() || vc.GetCustomValidatorConfig() != nil ||
			vc.GetTrustChainVerification() != tlsv3.CertificateValidationContext_VERIFY_TRUST_CHAIN || len(vc.GetMatchTypedSubjectAltNames()) > 0 ||
			vc.GetRequireSignedCertificateTimestamp().GetValue() {
			return nil, fmt.Errorf("validation context: only ca_certificate_provider_instance and match_subject_alt_names are supported")
		}
		//nolint:staticcheck // istiod's SAN field for gRPC is the deprecated one
		for i, sm := range vc.GetMatchSubjectAltNames() {
			h, err := stringMatchFromProto(HeaderMatch{}, sm)
			if err != nil {
				return nil, fmt.Errorf("match_subject_alt_names[%d]: %w", i, err)
			}
			t.SubjectAltNames = append(t.SubjectAltNames, h)
		}
	}
	if t.Root.InstanceName == "" {
		return nil, fmt.Errorf("the validation context names no certificate provider instance for the roots")
	}
	return t, nil
}

func rbacFilterFromProto(name string, b []byte) (RBAC, error) {
	out := RBAC{FilterName: name}
	pb := &rbachttpv3.RBAC{}
	if err := decode(b, pb); err != nil {
		return out, err
	}
	if pb.GetMatcher() != nil {
		return out, fmt.Errorf("matcher (the matcher API) is not supported; use rules")
	}
	// Shadow rules only record what they would do (A41: ignored).
	rules := pb.GetRules()
	if rules == nil {
		out.Disabled = true
		return out, nil
	}
	switch rules.GetAction() {
	case rbacv3.RBAC_ALLOW:
		out.Action = RBACAllow
	case rbacv3.RBAC_DENY:
		out.Action = RBACDeny
	default:
		return out, fmt.Errorf("rules.action %s is not supported (ALLOW or DENY)", rules.GetAction())
	}
	names := make([]string, 0, len(rules.GetPolicies()))
	for n := range rules.GetPolicies() {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		p := rules.GetPolicies()[n]
		if p.GetCondition() != nil || p.GetCheckedCondition() != nil {
			return out, fmt.Errorf("policy %q: CEL conditions are not supported", n)
		}
		pol := RBACPolicy{Name: n}
		for i, perm := range p.GetPermissions() {
			r, err := permissionFromProto(perm, 0)
			if err != nil {
				return out, fmt.Errorf("policy %q: permissions[%d]: %w", n, i, err)
			}
			pol.Permissions = append(pol.Permissions, r)
		}
		for i, prin := range p.GetPrincipals() {
			r, err := principalFromProto(prin, 0)
			if err != nil {
				return out, fmt.Errorf("policy %q: principals[%d]: %w", n, i, err)
			}
			pol.Principals = append(pol.Principals, r)
		}
		out.Policies = append(out.Policies, pol)
	}
	return out, nil
}

func permissionFromProto(pb *rbacv3.Permission, depth int) (Rule, error) {
	if depth > maxRuleDepth {
		return Rule{}, fmt.Errorf("nested deeper than %d levels", maxRuleDepth)
	}
	set := func(kind RuleKind, rules []*rbacv3.Permission) (Rule, error) {
		r := Rule{Kind: kind}
		for i, sub := range rules {
			s, err := permissionFromProto(sub, depth+1)
			if err != nil {
				return r, fmt.Errorf("[%d]: %w", i, err)
			}
			r.Rules = append(r.Rules, s)
		}
		return r, nil
	}
	switch v := pb.GetRule().(type) {
	case *rbacv3.Permission_Any:
		if !v.Any {
			return Rule{}, fmt.Errorf("any: false is not a valid permission")
		}
		return Rule{Kind: RuleAny}, nil
	case *rbacv3.Permission_AndRules:
		return set(RuleAnd, v.AndRules.GetRules())
	case *rbacv3.Permission_OrRules:
		return set(RuleOr, v.OrRules.GetRules())
	case *rbacv3.Permission_NotRule:
		return set(RuleNot, []*rbacv3.Permission{v.NotRule})
	case *rbacv3.Permission_Header:
		h, err := headerMatchFromProto(v.Header)
		return Rule{Kind: RuleHeader, Header: h}, err
	case *rbacv3.Permission_UrlPath:
		s, err := pathMatchFromProto(v.UrlPath)
		return Rule{Kind: RulePath, String: s, HasString: true}, err
	case *rbacv3.Permission_DestinationPort:
		return Rule{Kind: RuleDestinationPort, Port: v.DestinationPort}, nil
	case *rbacv3.Permission_DestinationIp:
		c, err := cidrFromProto(v.DestinationIp)
		return Rule{Kind: RuleDestinationIP, CIDR: c}, err
	case *rbacv3.Permission_RequestedServerName:
		s, err := stringMatchFromProto(HeaderMatch{}, v.RequestedServerName)
		return Rule{Kind: RuleServerName, String: s, HasString: true}, err
	case *rbacv3.Permission_Metadata, *rbacv3.Permission_SourcedMetadata:
		return Rule{}, fmt.Errorf("metadata permissions (request authentication, JWT claims, experimental.envoy.filters) cannot be enforced by a proxyless server")
	case *rbacv3.Permission_UriTemplate:
		return Rule{}, fmt.Errorf("uri_template permissions (AuthorizationPolicy path templates such as {*}) are not supported; use a path with a trailing * instead")
	case nil:
		return Rule{}, fmt.Errorf("empty permission")
	default:
		return Rule{}, fmt.Errorf("permission %T is not supported", v)
	}
}

func principalFromProto(pb *rbacv3.Principal, depth int) (Rule, error) {
	if depth > maxRuleDepth {
		return Rule{}, fmt.Errorf("nested deeper than %d levels", maxRuleDepth)
	}
	set := func(kind RuleKind, ids []*rbacv3.Principal) (Rule, error) {
		r := Rule{Kind: kind}
		for i, sub := range ids {
			s, err := principalFromProto(sub, depth+1)
			if err != nil {
				return r, fmt.Errorf("[%d]: %w", i, err)
			}
			r.Rules = append(r.Rules, s)
		}
		return r, nil
	}
	switch v := pb.GetIdentifier().(type) {
	case *rbacv3.Principal_Any:
		if !v.Any {
			return Rule{}, fmt.Errorf("any: false is not a valid principal")
		}
		return Rule{Kind: RuleAny}, nil
	case *rbacv3.Principal_AndIds:
		return set(RuleAnd, v.AndIds.GetIds())
	case *rbacv3.Principal_OrIds:
		return set(RuleOr, v.OrIds.GetIds())
	case *rbacv3.Principal_NotId:
		return set(RuleNot, []*rbacv3.Principal{v.NotId})
	case *rbacv3.Principal_Authenticated_:
		r := Rule{Kind: RuleAuthenticated}
		if pn := v.Authenticated.GetPrincipalName(); pn != nil {
			s, err := stringMatchFromProto(HeaderMatch{}, pn)
			if err != nil {
				return r, fmt.Errorf("authenticated.principal_name: %w", err)
			}
			r.String, r.HasString = s, true
		}
		return r, nil
	case *rbacv3.Principal_DirectRemoteIp:
		c, err := cidrFromProto(v.DirectRemoteIp)
		return Rule{Kind: RuleSourceIP, CIDR: c}, err
	case *rbacv3.Principal_RemoteIp:
		c, err := cidrFromProto(v.RemoteIp)
		return Rule{Kind: RuleSourceIP, CIDR: c}, err
	//nolint:staticcheck // source_ip is deprecated but still a valid principal
	case *rbacv3.Principal_SourceIp:
		c, err := cidrFromProto(v.SourceIp)
		return Rule{Kind: RuleSourceIP, CIDR: c}, err
	case *rbacv3.Principal_Header:
		h, err := headerMatchFromProto(v.Header)
		return Rule{Kind: RuleHeader, Header: h}, err
	case *rbacv3.Principal_UrlPath:
		s, err := pathMatchFromProto(v.UrlPath)
		return Rule{Kind: RulePath, String: s, HasString: true}, err
	case *rbacv3.Principal_Metadata, *rbacv3.Principal_SourcedMetadata:
		return Rule{}, fmt.Errorf("metadata principals (requestPrincipals, request.auth.* conditions: JWT) cannot be enforced by a proxyless server")
	case nil:
		return Rule{}, fmt.Errorf("empty principal")
	default:
		return Rule{}, fmt.Errorf("principal %T is not supported", v)
	}
}

func pathMatchFromProto(pb *matcherv3.PathMatcher) (HeaderMatch, error) {
	sm := pb.GetPath()
	if sm == nil {
		return HeaderMatch{}, fmt.Errorf("url_path has no path matcher")
	}
	return stringMatchFromProto(HeaderMatch{}, sm)
}

func cidrFromProto(pb *corev3.CidrRange) (netip.Prefix, error) {
	ip, err := netip.ParseAddr(pb.GetAddressPrefix())
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("address_prefix %q is not an IP address", pb.GetAddressPrefix())
	}
	bits := ip.BitLen()
	if pl := pb.GetPrefixLen(); pl != nil {
		bits = int(pl.GetValue())
	}
	p, err := ip.Prefix(bits)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("prefix_len %d is out of range for %s", bits, ip)
	}
	return p, nil
}
