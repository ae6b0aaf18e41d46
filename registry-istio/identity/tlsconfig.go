package identity

import (
	"crypto/tls"
	"fmt"
	"slices"
	"time"
)

// ServerTLSConfig returns a TLS server configuration presenting the
// current certificate and requiring a client certificate from the mesh:
// the client's chain is verified against the root and its SPIFFE ID is
// passed to authorize (nil accepts any workload of the mesh).
func (s *Source) ServerTLSConfig(authorize func(ID) error) *tls.Config {
	return &tls.Config{
		MinVersion:       tls.VersionTLS12,
		GetCertificate:   s.GetCertificate,
		ClientAuth:       tls.RequireAnyClientCert,
		VerifyConnection: s.verifier(authorize),
	}
}

// ClientTLSConfig returns a TLS client configuration presenting the current
// certificate and verifying the server's chain against the root and its
// SPIFFE ID with authorize (nil accepts any workload of the mesh), in place
// of Go's hostname check, which Istio certificates cannot pass.
func (s *Source) ClientTLSConfig(authorize func(ID) error) *tls.Config {
	return &tls.Config{
		MinVersion:           tls.VersionTLS12,
		GetClientCertificate: s.GetClientCertificate,
		// The chain and the SPIFFE ID are verified by VerifyConnection,
		// which runs on resumed connections too.
		InsecureSkipVerify: true, //nolint:gosec // VerifyConnection verifies against the mesh root
		VerifyConnection:   s.verifier(authorize),
	}
}

// verifier checks the peer of every connection, full handshake or resumed.
func (s *Source) verifier(authorize func(ID) error) func(tls.ConnectionState) error {
	return func(cs tls.ConnectionState) error {
		id, err := verifyChain(cs.PeerCertificates, s.Roots(), time.Now())
		if err != nil {
			return err
		}
		if authorize != nil {
			return authorize(id)
		}
		return nil
	}
}

// AllowIDs returns an authorize function for ServerTLSConfig and
// ClientTLSConfig accepting only the given identities (as a DestinationRule
// with ISTIO_MUTUAL lists a destination's service accounts).
func AllowIDs(ids ...ID) func(ID) error {
	return func(id ID) error {
		if slices.Contains(ids, id) {
			return nil
		}
		return fmt.Errorf("identity: peer %s is not among the allowed identities %v", id, ids)
	}
}
