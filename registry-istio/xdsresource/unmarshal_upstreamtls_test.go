package xdsresource_test

import (
	"slices"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/shoalmesh/shoal/registry-istio/xdsresource"
	"github.com/shoalmesh/shoal/registry-istio/xdstest"
)

const greeterSA = "spiffe://cluster.local/ns/default/sa/greeter"

// tlsCluster is an istiod cluster with ISTIO_MUTUAL whose context edit
// changed.
func tlsCluster(edit func(*tlsv3.UpstreamTlsContext)) func() proto.Message {
	return func() proto.Message {
		ctx := xdstest.UpstreamTLSContext(greeterSA)
		edit(ctx)
		return xdstest.WithUpstreamTLS(xdstest.Cluster(host, "", port), ctx)
	}
}

func validation(ctx *tlsv3.UpstreamTlsContext) *tlsv3.CertificateValidationContext {
	return ctx.GetCommonTlsContext().GetCombinedValidationContext().GetDefaultValidationContext()
}

func TestClusterUpstreamTLS(t *testing.T) {
	plain := func(t *testing.T, r xdsresource.Resource) {
		if c := r.(*xdsresource.Cluster); c.TLS != nil {
			t.Fatalf("TLS %+v, want none", c.TLS)
		}
	}
	run(t, []testCase{
		{
			name:  "no transport socket: plaintext",
			typ:   xdsresource.ClusterType,
			msg:   func() proto.Message { return xdstest.Cluster(host, "", port) },
			check: plain,
		},
		{
			name: "ISTIO_MUTUAL as istiod writes it",
			typ:  xdsresource.ClusterType,
			msg: func() proto.Message {
				return xdstest.WithIstioMutual(xdstest.Cluster(host, "", port), greeterSA, "spiffe://cluster.local/ns/default/sa/greeter-canary")
			},
			check: func(t *testing.T, r xdsresource.Resource) {
				got := r.(*xdsresource.Cluster).TLS
				if got == nil || got.IdentityInstance != "default" || got.IdentityCertificate != "default" ||
					got.RootInstance != "default" || got.RootCertificate != "ROOTCA" ||
					!slices.Equal(got.SANs, []string{greeterSA, "spiffe://cluster.local/ns/default/sa/greeter-canary"}) {
					t.Fatalf("TLS %+v", got)
				}
			},
		},
		{
			name: "no SANs: any workload of the mesh",
			typ:  xdsresource.ClusterType,
			msg:  func() proto.Message { return xdstest.WithIstioMutual(xdstest.Cluster(host, "", port)) },
			check: func(t *testing.T, r xdsresource.Resource) {
				if got := r.(*xdsresource.Cluster).TLS; got == nil || len(got.SANs) != 0 {
					t.Fatalf("TLS %+v", got)
				}
			},
		},
		{
			name: "only the deprecated provider fields (older istiod)",
			typ:  xdsresource.ClusterType,
			msg: tlsCluster(func(ctx *tlsv3.UpstreamTlsContext) {
				ctx.CommonTlsContext.TlsCertificateProviderInstance = nil
				validation(ctx).CaCertificateProviderInstance = nil
			}),
			check: func(t *testing.T, r xdsresource.Resource) {
				got := r.(*xdsresource.Cluster).TLS
				if got == nil || got.IdentityInstance != "default" || got.RootCertificate != "ROOTCA" {
					t.Fatalf("TLS %+v", got)
				}
			},
		},
		{
			name: "another transport socket",
			typ:  xdsresource.ClusterType,
			msg: func() proto.Message {
				c := xdstest.WithIstioMutual(xdstest.Cluster(host, "", port))
				c.TransportSocket.Name = "envoy.transport_sockets.raw_buffer"
				return c
			},
			wantErr: `transport_socket "envoy.transport_sockets.raw_buffer" is not supported`,
		},
		{
			name: "not an UpstreamTlsContext",
			typ:  xdsresource.ClusterType,
			msg: func() proto.Message {
				c := xdstest.Cluster(host, "", port)
				c.TransportSocket = &corev3.TransportSocket{Name: "envoy.transport_sockets.tls", ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: toAny(t, &tlsv3.DownstreamTlsContext{})}}
				return c
			},
			wantErr: `tls.v3.DownstreamTlsContext" is not supported`,
		},
		{
			name: "inline certificates",
			typ:  xdsresource.ClusterType,
			msg: tlsCluster(func(ctx *tlsv3.UpstreamTlsContext) {
				ctx.CommonTlsContext.TlsCertificates = []*tlsv3.TlsCertificate{{}}
			}),
			wantErr: "inline and SDS certificates are not supported",
		},
		{
			name: "no certificate to present",
			typ:  xdsresource.ClusterType,
			msg: tlsCluster(func(ctx *tlsv3.UpstreamTlsContext) {
				ctx.CommonTlsContext.TlsCertificateProviderInstance = nil
				ctx.CommonTlsContext.TlsCertificateCertificateProviderInstance = nil //nolint:staticcheck // the deprecated field istiod sends
			}),
			wantErr: "no tls_certificate_provider_instance",
		},
		{
			name: "no root",
			typ:  xdsresource.ClusterType,
			msg: tlsCluster(func(ctx *tlsv3.UpstreamTlsContext) {
				ctx.CommonTlsContext.ValidationContextType = &tlsv3.CommonTlsContext_ValidationContext{ValidationContext: &tlsv3.CertificateValidationContext{}}
			}),
			wantErr: "no ca_certificate_provider_instance",
		},
		{
			name: "SAN prefix match",
			typ:  xdsresource.ClusterType,
			msg: tlsCluster(func(ctx *tlsv3.UpstreamTlsContext) {
				validation(ctx).MatchSubjectAltNames[0].MatchPattern = &matcherv3.StringMatcher_Prefix{Prefix: "spiffe://"} //nolint:staticcheck // the field istiod sends
			}),
			wantErr: "match_subject_alt_names[0]: only case-sensitive exact matches",
		},
		{
			name:    "SAN match ignoring case",
			typ:     xdsresource.ClusterType,
			msg:     tlsCluster(func(ctx *tlsv3.UpstreamTlsContext) { validation(ctx).MatchSubjectAltNames[0].IgnoreCase = true }), //nolint:staticcheck // as above
			wantErr: "only case-sensitive exact matches",
		},
		{
			name:    "certificate pinning",
			typ:     xdsresource.ClusterType,
			msg:     tlsCluster(func(ctx *tlsv3.UpstreamTlsContext) { validation(ctx).VerifyCertificateHash = []string{"ab"} }),
			wantErr: "verify_certificate_spki/hash",
		},
		{
			name: "untrusted chains accepted",
			typ:  xdsresource.ClusterType,
			msg: tlsCluster(func(ctx *tlsv3.UpstreamTlsContext) {
				validation(ctx).TrustChainVerification = tlsv3.CertificateValidationContext_ACCEPT_UNTRUSTED
			}),
			wantErr: "ACCEPT_UNTRUSTED is not supported",
		},
		{
			name:    "SNI",
			typ:     xdsresource.ClusterType,
			msg:     tlsCluster(func(ctx *tlsv3.UpstreamTlsContext) { ctx.Sni = "greeter" }),
			wantErr: "sni, allow_renegotiation and max_session_keys are not supported",
		},
		{
			name:    "session keys",
			typ:     xdsresource.ClusterType,
			msg:     tlsCluster(func(ctx *tlsv3.UpstreamTlsContext) { ctx.MaxSessionKeys = wrapperspb.UInt32(3) }),
			wantErr: "max_session_keys",
		},
		{
			name:    "ALPN set by the server",
			typ:     xdsresource.ClusterType,
			msg:     tlsCluster(func(ctx *tlsv3.UpstreamTlsContext) { ctx.CommonTlsContext.AlpnProtocols = []string{"istio"} }),
			wantErr: "alpn_protocols",
		},
	})
}
