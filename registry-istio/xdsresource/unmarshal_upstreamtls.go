package xdsresource

import (
	"errors"
	"fmt"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
)

const upstreamTLSURL = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"

// upstreamTLSFromProto validates a cluster's transport socket. Only what a
// proxyless client can honour is accepted, as gRFC A29 has it: certificates
// from provider instances (no inline or SDS certificates), a root from a
// provider instance, and exact URI SAN matches; anything that would change
// what is verified is refused, so the cluster is NACKed rather than
// secured less than istiod asked.
func upstreamTLSFromProto(ts *corev3.TransportSocket) (*UpstreamTLS, error) {
	if ts.GetName() != tlsTransportName {
		return nil, fmt.Errorf("transport_socket %q is not supported (want %s)", ts.GetName(), tlsTransportName)
	}
	tc := ts.GetTypedConfig()
	if tc == nil {
		return nil, errors.New("transport_socket: no typed_config; istiod sends an UpstreamTlsContext")
	}
	if tc.GetTypeUrl() != upstreamTLSURL {
		return nil, fmt.Errorf("transport_socket: typed_config %q is not supported (want %s)", tc.GetTypeUrl(), upstreamTLSURL)
	}
	pb := &tlsv3.UpstreamTlsContext{}
	if err := decode(tc.GetValue(), pb); err != nil {
		return nil, fmt.Errorf("transport_socket: %w", err)
	}
	if pb.GetSni() != "" || pb.GetAllowRenegotiation() || pb.GetMaxSessionKeys() != nil {
		return nil, errors.New("transport_socket: sni, allow_renegotiation and max_session_keys are not supported; Shoal verifies the server's SPIFFE ID, not a host name")
	}
	ctc := pb.GetCommonTlsContext()
	if ctc == nil {
		return nil, errors.New("transport_socket: no common_tls_context")
	}
	if len(ctc.GetTlsCertificates()) > 0 || len(ctc.GetTlsCertificateSdsSecretConfigs()) > 0 {
		return nil, errors.New("transport_socket: inline and SDS certificates are not supported; use tls_certificate_provider_instance (istiod's ISTIO_MUTUAL)")
	}
	if ctc.GetTlsParams() != nil || ctc.GetCustomHandshaker() != nil || ctc.GetCustomTlsCertificateSelector() != nil || len(ctc.GetAlpnProtocols()) > 0 {
		return nil, errors.New("transport_socket: tls_params, custom_handshaker, custom_tls_certificate_selector and alpn_protocols are not supported")
	}
	out := &UpstreamTLS{}
	if p := ctc.GetTlsCertificateProviderInstance(); p != nil {
		out.IdentityInstance, out.IdentityCertificate = p.GetInstanceName(), p.GetCertificateName()
	} else if p := ctc.GetTlsCertificateCertificateProviderInstance(); p != nil { //nolint:staticcheck // istiod still sends the deprecated field; older ones only it
		out.IdentityInstance, out.IdentityCertificate = p.GetInstanceName(), p.GetCertificateName()
	}
	if out.IdentityInstance == "" {
		return nil, errors.New("transport_socket: no tls_certificate_provider_instance; Shoal does mutual TLS only (ISTIO_MUTUAL) and needs to know which certificate to present")
	}
	var vc *tlsv3.CertificateValidationContext
	switch v := ctc.GetValidationContextType().(type) {
	case *tlsv3.CommonTlsContext_ValidationContext:
		vc = v.ValidationContext
	case *tlsv3.CommonTlsContext_CombinedValidationContext:
		vc = v.CombinedValidationContext.GetDefaultValidationContext()
		if p := v.CombinedValidationContext.GetValidationContextCertificateProviderInstance(); p != nil { //nolint:staticcheck // as above
			out.RootInstance, out.RootCertificate = p.GetInstanceName(), p.GetCertificateName()
		}
	case nil:
	default:
		return nil, fmt.Errorf("transport_socket: validation context %T is not supported (SDS); use ca_certificate_provider_instance", v)
	}
	if p := vc.GetCaCertificateProviderInstance(); p != nil {
		out.RootInstance, out.RootCertificate = p.GetInstanceName(), p.GetCertificateName()
	}
	if out.RootInstance == "" {
		return nil, errors.New("transport_socket: no ca_certificate_provider_instance; the server's certificate could not be verified")
	}
	if vc.GetTrustedCa() != nil || len(vc.GetVerifyCertificateSpki()) > 0 || len(vc.GetVerifyCertificateHash()) > 0 ||
		vc.GetRequireSignedCertificateTimestamp() != nil || vc.GetCrl() != nil || vc.GetCustomValidatorConfig() != nil ||
		len(vc.GetMatchTypedSubjectAltNames()) > 0 || vc.GetOnlyVerifyLeafCertCrl() {
		return nil, errors.New("transport_socket: trusted_ca, verify_certificate_spki/hash, require_signed_certificate_timestamp, crl, custom_validator_config and match_typed_subject_alt_names are not supported; Shoal verifies the chain against the provider's root and exact SAN matches")
	}
	if vc.GetTrustChainVerification() != tlsv3.CertificateValidationContext_VERIFY_TRUST_CHAIN {
		return nil, errors.New("transport_socket: trust_chain_verification ACCEPT_UNTRUSTED is not supported; Shoal always verifies the server's chain")
	}
	for i, m := range vc.GetMatchSubjectAltNames() { //nolint:staticcheck // the SAN list istiod sends
		exact, ok := m.GetMatchPattern().(*matcherv3.StringMatcher_Exact)
		if !ok || m.GetIgnoreCase() || exact.Exact == "" {
			return nil, fmt.Errorf("transport_socket: match_subject_alt_names[%d]: only case-sensitive exact matches are supported (istiod sends the destination's SPIFFE IDs as exact matches)", i)
		}
		out.SANs = append(out.SANs, exact.Exact)
	}
	return out, nil
}
