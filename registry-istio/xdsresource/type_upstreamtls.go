package xdsresource

// UpstreamTLS is a cluster's validated UpstreamTlsContext: mutual TLS to
// the cluster's endpoints with certificates from certificate provider
// instances, as istiod's grpc generator writes it for a DestinationRule
// with tls.mode ISTIO_MUTUAL.
type UpstreamTLS struct {
	// IdentityInstance and IdentityCertificate name the certificate
	// provider instance and certificate the client presents ("default",
	// "default" from istiod).
	IdentityInstance, IdentityCertificate string
	// RootInstance and RootCertificate name the provider of the roots the
	// server's chain is verified against ("default", "ROOTCA" from istiod).
	RootInstance, RootCertificate string
	// SANs are the identities (exact URI SANs, the destination's SPIFFE
	// IDs) the server may present; empty accepts any certificate that
	// chains to the roots.
	SANs []string
}
