package authz_test

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"net/netip"
	"net/url"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	rbacv3 "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/shoalmesh/shoal/registry-istio/authz"
	"github.com/shoalmesh/shoal/registry-istio/xdsresource"
	"github.com/shoalmesh/shoal/registry-istio/xdstest"
)

// engineFor builds an engine the way a server does: istiod-shaped protos
// through xdsresource's validation.
func engineFor(t testing.TB, filters ...*hcmv3.HttpFilter) *authz.Engine {
	t.Helper()
	a, err := anypb.New(xdstest.InboundListener("10.0.0.7", 20000, true, filters...))
	if err != nil {
		t.Fatal(err)
	}
	_, r, err := xdsresource.Unmarshal(xdsresource.ListenerType, a)
	if err != nil {
		t.Fatal(err)
	}
	return authz.New(r.(*xdsresource.Listener).Inbound.FilterChain.RBAC)
}

func or(p ...*rbacv3.Principal) *rbacv3.Principal {
	return &rbacv3.Principal{Identifier: &rbacv3.Principal_OrIds{OrIds: &rbacv3.Principal_Set{Ids: p}}}
}

func orPerm(p ...*rbacv3.Permission) *rbacv3.Permission {
	return &rbacv3.Permission{Rule: &rbacv3.Permission_OrRules{OrRules: &rbacv3.Permission_Set{Rules: p}}}
}

func header(name string, sm *matcherv3.StringMatcher) *routev3.HeaderMatcher {
	return &routev3.HeaderMatcher{Name: name, HeaderMatchSpecifier: &routev3.HeaderMatcher_StringMatch{StringMatch: sm}}
}

func cidr(ip string, bits uint32) *corev3.CidrRange {
	return &corev3.CidrRange{AddressPrefix: ip, PrefixLen: wrapperspb.UInt32(bits)}
}

const (
	saA = "spiffe://cluster.local/ns/default/sa/a"
	saB = "spiffe://cluster.local/ns/default/sa/b"
	saE = "spiffe://cluster.local/ns/evil/sa/x"
)

func mtlsFrom(id string) *tls.ConnectionState {
	u, _ := url.Parse(id)
	return &tls.ConnectionState{HandshakeComplete: true, PeerCertificates: []*x509.Certificate{{URIs: []*url.URL{u}}}}
}

func req(path, id string, mut ...func(*authz.Request)) *authz.Request {
	r := &authz.Request{
		Path: path, Authority: "greeter.default.svc.cluster.local:20000",
		Headers:     map[string][]string{"x-tenant": {"blue"}},
		Source:      netip.MustParseAddrPort("10.1.2.3:40000"),
		Destination: netip.MustParseAddrPort("10.0.0.7:20000"),
	}
	if id != "" {
		r.TLS = mtlsFrom(id)
	}
	for _, m := range mut {
		m(r)
	}
	return r
}

// TestEvaluateIstiodPolicies runs the policies the probe of the real istiod
// showed (an ALLOW for service account a on a path prefix, a DENY on one
// method and on a namespace from an address range) against calls.
func TestEvaluateIstiodPolicies(t *testing.T) {
	deny := xdstest.RBACFilter(rbacv3.RBAC_DENY, map[string]*rbacv3.Policy{
		"default-deny-admin-0": xdstest.RBACPolicy([]*rbacv3.Permission{orPerm(xdstest.PathExact("/greet.GreetService/Admin"))}, nil),
		"default-deny-admin-1": xdstest.RBACPolicy(
			[]*rbacv3.Permission{orPerm(&rbacv3.Permission{Rule: &rbacv3.Permission_DestinationPort{DestinationPort: 20000}})},
			[]*rbacv3.Principal{
				or(xdstest.PrincipalRegex(".*/ns/evil/.*")),
				or(&rbacv3.Principal{Identifier: &rbacv3.Principal_DirectRemoteIp{DirectRemoteIp: cidr("10.9.0.0", 16)}}),
			}),
	})
	allow := xdstest.RBACFilter(rbacv3.RBAC_ALLOW, map[string]*rbacv3.Policy{
		"default-allow-a-0": xdstest.RBACPolicy(
			[]*rbacv3.Permission{
				orPerm(&rbacv3.Permission{Rule: &rbacv3.Permission_Header{Header: header(":method", &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: "POST"}})}}),
				orPerm(xdstest.PathPrefix("/greet.GreetService/")),
				{Rule: &rbacv3.Permission_NotRule{NotRule: orPerm(xdstest.PathExact("/greet.GreetService/Secret"))}},
			},
			[]*rbacv3.Principal{
				or(xdstest.PrincipalName(saA)),
				or(&rbacv3.Principal{Identifier: &rbacv3.Principal_Header{Header: header("x-tenant", &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: "blue"}})}}),
			}),
		"default-allow-a-1": xdstest.RBACPolicy(
			[]*rbacv3.Permission{orPerm(&rbacv3.Permission{Rule: &rbacv3.Permission_Header{Header: header(":authority", &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Suffix{Suffix: ".LOCAL"}, IgnoreCase: true})}})},
			[]*rbacv3.Principal{
				or(&rbacv3.Principal{Identifier: &rbacv3.Principal_DirectRemoteIp{DirectRemoteIp: cidr("127.0.0.0", 8)}}),
				{Identifier: &rbacv3.Principal_NotId{NotId: or(xdstest.PrincipalRegex("spiffe://.*/sa/b"))}},
			}),
	})
	e := engineFor(t, deny, allow)
	if e.Policies() != 4 {
		t.Fatalf("Policies() = %d, want 4", e.Policies())
	}
	tests := []struct {
		name       string
		r          *authz.Request
		allow      bool
		policy     string
		reasonHas  string
		filterName string
	}{
		{name: "a calls greet", r: req("/greet.GreetService/Greet", saA), allow: true},
		{name: "b calls greet", r: req("/greet.GreetService/Greet", saB), reasonHas: "matches no ALLOW policy (policies default-allow-a-0, default-allow-a-1)", filterName: xdstest.RBACFilterName},
		{name: "a without the tenant header", r: req("/greet.GreetService/Greet", saA, func(r *authz.Request) { r.Headers = nil }), reasonHas: "no ALLOW"},
		{name: "a on a plaintext connection", r: req("/greet.GreetService/Greet", ""), reasonHas: "no ALLOW"},
		{name: "a calls the excluded method", r: req("/greet.GreetService/Secret", saA), reasonHas: "no ALLOW"},
		{name: "a calls another service", r: req("/other.Service/Greet", saA), reasonHas: "no ALLOW"},
		{name: "a calls Admin: denied by name", r: req("/greet.GreetService/Admin", saA), policy: "default-deny-admin-0", reasonHas: "denied by DENY policy default-deny-admin-0", filterName: xdstest.RBACDenyFilterName},
		{name: "evil namespace from the denied range", r: req("/greet.GreetService/Greet", saE, func(r *authz.Request) {
			r.Source = netip.MustParseAddrPort("10.9.1.1:5")
		}), policy: "default-deny-admin-1"},
		{name: "evil namespace on another port is not denied, nor allowed", r: req("/greet.GreetService/Greet", saE, func(r *authz.Request) {
			r.Source = netip.MustParseAddrPort("10.9.1.1:5")
			r.Destination = netip.MustParseAddrPort("10.0.0.7:20001")
		}), reasonHas: "no ALLOW"},
		{name: "loopback caller that is not b, authority suffix in any case", r: req("/x/Y", saE, func(r *authz.Request) {
			r.Source = netip.MustParseAddrPort("127.0.0.1:5")
			r.Authority = "Greeter.Shoal.LOCAL"
		}), allow: true},
		{name: "the authority is compared as sent, port included", r: req("/x/Y", saE, func(r *authz.Request) {
			r.Source = netip.MustParseAddrPort("127.0.0.1:5")
		}), reasonHas: "no ALLOW"},
		{name: "loopback caller b is excluded by notPrincipals", r: req("/x/Y", saB, func(r *authz.Request) {
			r.Source = netip.MustParseAddrPort("127.0.0.1:5")
		}), reasonHas: "no ALLOW"},
		{name: "IPv4-mapped source", r: req("/x/Y", saE, func(r *authz.Request) {
			r.Source = netip.MustParseAddrPort("[::ffff:127.0.0.1]:5")
			r.Authority = "a.local"
		}), allow: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := e.Evaluate(tt.r)
			if d.Allowed != tt.allow || d.Policy != tt.policy || !strings.Contains(d.Reason, tt.reasonHas) ||
				(tt.filterName != "" && d.Filter != tt.filterName) {
				t.Fatalf("Evaluate = %+v, want allowed=%v policy=%q reason containing %q filter %q", d, tt.allow, tt.policy, tt.reasonHas, tt.filterName)
			}
			if !d.Allowed && !strings.Contains(d.Reason, tt.r.Path) {
				t.Fatalf("reason %q does not name the path", d.Reason)
			}
		})
	}
}

// TestEvaluateEdges: no filters, disabled filters, an ALLOW filter
// without policies, header matcher edge cases and principal names from
// DNS SANs and subjects.
func TestEvaluateEdges(t *testing.T) {
	var nilEngine *authz.Engine
	if d := nilEngine.Evaluate(req("/a/b", "")); !d.Allowed {
		t.Fatal("a nil engine refused a call")
	}
	if d := engineFor(t).Evaluate(req("/a/b", "")); !d.Allowed {
		t.Fatal("an engine without filters refused a call")
	}
	if d := engineFor(t, xdstest.RBACFilter(rbacv3.RBAC_ALLOW, nil)).Evaluate(req("/a/b", saA)); d.Allowed || !strings.Contains(d.Reason, "without policies refuses every call") {
		t.Fatalf("ALLOW without policies: %+v", d)
	}
	if d := engineFor(t, xdstest.RBACFilter(rbacv3.RBAC_DENY, nil)).Evaluate(req("/a/b", saA)); !d.Allowed {
		t.Fatalf("DENY without policies: %+v", d)
	}
	allowIf := func(p *rbacv3.Principal) *authz.Engine {
		return engineFor(t, xdstest.RBACFilter(rbacv3.RBAC_ALLOW, map[string]*rbacv3.Policy{"p": xdstest.RBACPolicy(nil, []*rbacv3.Principal{p})}))
	}
	hdr := func(h *routev3.HeaderMatcher) *rbacv3.Principal {
		return &rbacv3.Principal{Identifier: &rbacv3.Principal_Header{Header: h}}
	}
	present := func(name string, want, invert bool) *rbacv3.Principal {
		return hdr(&routev3.HeaderMatcher{Name: name, InvertMatch: invert, HeaderMatchSpecifier: &routev3.HeaderMatcher_PresentMatch{PresentMatch: want}})
	}
	exact := func(name, v string, invert bool) *rbacv3.Principal {
		h := header(name, &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: v}})
		h.InvertMatch = invert
		return hdr(h)
	}
	withHeaders := func(h map[string][]string) func(*authz.Request) { return func(r *authz.Request) { r.Headers = h } }
	cases := []struct {
		name string
		p    *rbacv3.Principal
		r    *authz.Request
		want bool
	}{
		{"present", present("x-tenant", true, false), req("/a/b", ""), true},
		{"present, absent", present("x-user", true, false), req("/a/b", ""), false},
		{"inverted presence of an absent header", present("x-user", true, true), req("/a/b", ""), true},
		{"inverted value match of an absent header does not match (Envoy)", exact("x-user", "bob", true), req("/a/b", ""), false},
		{"inverted value match of another value", exact("x-tenant", "red", true), req("/a/b", ""), true},
		{"values joined with commas", exact("x-tenant", "blue,red", false), req("/a/b", "", withHeaders(map[string][]string{"x-tenant": {"blue", "red"}})), true},
		{"binary headers are invisible", present("x-trace-bin", true, false), req("/a/b", "", withHeaders(map[string][]string{"x-trace-bin": {"AAA"}})), false},
		{":scheme on plaintext", exact(":scheme", "http", false), req("/a/b", ""), true},
		{":scheme on TLS", exact(":scheme", "https", false), req("/a/b", saA), true},
		{"range", hdr(&routev3.HeaderMatcher{Name: "x-n", HeaderMatchSpecifier: &routev3.HeaderMatcher_RangeMatch{RangeMatch: nil}}), req("/a/b", ""), false},
		{"any authenticated, plaintext", &rbacv3.Principal{Identifier: &rbacv3.Principal_Authenticated_{Authenticated: &rbacv3.Principal_Authenticated{}}}, req("/a/b", ""), false},
		{"any authenticated, mTLS", &rbacv3.Principal{Identifier: &rbacv3.Principal_Authenticated_{Authenticated: &rbacv3.Principal_Authenticated{}}}, req("/a/b", saB), true},
		{"DNS SAN when there is no URI SAN", xdstest.PrincipalName("svc.example"), req("/a/b", "", func(r *authz.Request) {
			r.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{{DNSNames: []string{"svc.example"}}}}
		}), true},
		{"subject when there are no SANs", xdstest.PrincipalName("CN=client"), req("/a/b", "", func(r *authz.Request) {
			r.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{{Subject: pkix.Name{CommonName: "client"}}}}
		}), true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.name == "range" {
				c.p = hdr(&routev3.HeaderMatcher{Name: "x-n", HeaderMatchSpecifier: &routev3.HeaderMatcher_RangeMatch{RangeMatch: rangeOf(10, 20)}})
				if d := allowIf(c.p).Evaluate(req("/a/b", "", withHeaders(map[string][]string{"x-n": {"15"}}))); !d.Allowed {
					t.Fatalf("15 in [10,20): %+v", d)
				}
				c.r = req("/a/b", "", withHeaders(map[string][]string{"x-n": {"15x"}}))
			}
			if d := allowIf(c.p).Evaluate(c.r); d.Allowed != c.want {
				t.Fatalf("allowed = %v, want %v (%s)", d.Allowed, c.want, d.Reason)
			}
		})
	}
}

func rangeOf(start, end int64) *typev3.Int64Range { return &typev3.Int64Range{Start: start, End: end} }

// BenchmarkEvaluate is the per-call cost of the check on the shapes istiod
// sends: a DENY on one path and an ALLOW of one principal on a prefix, for
// an allowed call from that principal.
func BenchmarkEvaluate(b *testing.B) {
	e := engineFor(b,
		xdstest.RBACFilter(rbacv3.RBAC_DENY, map[string]*rbacv3.Policy{
			"default-deny-admin-0": xdstest.RBACPolicy([]*rbacv3.Permission{orPerm(xdstest.PathExact("/greet.GreetService/Admin"))}, nil),
		}),
		xdstest.RBACFilter(rbacv3.RBAC_ALLOW, map[string]*rbacv3.Policy{
			"default-allow-a-0": xdstest.RBACPolicy([]*rbacv3.Permission{orPerm(xdstest.PathPrefix("/greet.GreetService/"))}, []*rbacv3.Principal{or(xdstest.PrincipalName(saA))}),
		}))
	r := req("/greet.GreetService/Greet", saA)
	b.ReportAllocs()
	for b.Loop() {
		if d := e.Evaluate(r); !d.Allowed {
			b.Fatal(d.Reason)
		}
	}
}
