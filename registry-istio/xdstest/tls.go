package xdstest

import (
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
)

// UpstreamTLSContext returns the UpstreamTlsContext istiod's grpc generator
// puts on an outbound cluster under a DestinationRule with tls.mode
// ISTIO_MUTUAL: the workload certificate from provider instance "default",
// the root from "default"/"ROOTCA" (in both the current and the deprecated
// fields, as istiod writes them), and the destination's service accounts as
// exact SAN matches.
func UpstreamTLSContext(sans ...string) *tlsv3.UpstreamTlsContext {
	var match []*matcherv3.StringMatcher
	for _, s := range sans {
		match = append(match, &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: s}})
	}
	return &tlsv3.UpstreamTlsContext{CommonTlsContext: &tlsv3.CommonTlsContext{
		TlsCertificateProviderInstance:            &tlsv3.CertificateProviderPluginInstance{InstanceName: "default", CertificateName: "default"},
		TlsCertificateCertificateProviderInstance: &tlsv3.CommonTlsContext_CertificateProviderInstance{InstanceName: "default", CertificateName: "default"}, //nolint:staticcheck // istiod still sends the deprecated field
		ValidationContextType: &tlsv3.CommonTlsContext_CombinedValidationContext{CombinedValidationContext: &tlsv3.CommonTlsContext_CombinedCertificateValidationContext{
			ValidationContextCertificateProviderInstance: &tlsv3.CommonTlsContext_CertificateProviderInstance{InstanceName: "default", CertificateName: "ROOTCA"}, //nolint:staticcheck // as above
			DefaultValidationContext: &tlsv3.CertificateValidationContext{
				MatchSubjectAltNames:          match, //nolint:staticcheck // what istiod sends
				CaCertificateProviderInstance: &tlsv3.CertificateProviderPluginInstance{InstanceName: "default", CertificateName: "ROOTCA"},
			},
		}},
	}}
}

// WithUpstreamTLS puts ctx on c as its envoy.transport_sockets.tls transport
// socket and returns c.
func WithUpstreamTLS(c *clusterv3.Cluster, ctx *tlsv3.UpstreamTlsContext) *clusterv3.Cluster {
	c.TransportSocket = &corev3.TransportSocket{
		Name:       "envoy.transport_sockets.tls",
		ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: mustAny(ctx)},
	}
	return c
}

// WithIstioMutual is WithUpstreamTLS with UpstreamTLSContext(sans...): what
// a DestinationRule with tls.mode ISTIO_MUTUAL makes of c.
func WithIstioMutual(c *clusterv3.Cluster, sans ...string) *clusterv3.Cluster {
	return WithUpstreamTLS(c, UpstreamTLSContext(sans...))
}

// StrictService is Service(host, port, ep) as istiod sends it under
// PeerAuthentication STRICT and a DestinationRule ISTIO_MUTUAL: the
// cluster carries UpstreamTLSContext(sans...) and ep has an inbound
// listener requiring mutual TLS.
func StrictService(host string, port uint32, ep Endpoint, sans ...string) Resources {
	r := Service(host, port, ep)
	r.Clusters[0] = WithIstioMutual(r.Clusters[0], sans...)
	r.Listeners = append(r.Listeners, InboundListener(ep.IP, ep.Port, true))
	return r
}
