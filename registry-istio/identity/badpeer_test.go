package identity_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/shoalmesh/shoal/registry-istio/identity"
)

// TestBadServerCertificatesRefused is the client side of the bad-input
// case (the server side is interop/securitye2e TestServerSecurity
// BadClientCertificates): over a real TLS handshake, a consumer with the
// mesh's certificate refuses a server presenting the provider's SPIFFE ID
// in a certificate from a foreign CA, or an expired one from the mesh CA,
// with an error that says which.
func TestBadServerCertificatesRefused(t *testing.T) {
	ca := newFakeCA(t, time.Hour)
	ca.accept("consumer-token", consumerID)
	consumer := newSource(t, ca, writeToken(t, t.TempDir(), "consumer-token"))
	foreign, foreignKey := newRoot(t, "foreign")

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(providerID.String())
	now := time.Now()
	serverWith := func(issuer *x509.Certificate, issuerKey *ecdsa.PrivateKey, notAfter time.Time) *tls.Config {
		leaf := sign(t, issuer, issuerKey, &x509.Certificate{
			URIs: []*url.URL{u}, NotBefore: now.Add(-2 * time.Hour), NotAfter: notAfter,
			KeyUsage:    x509.KeyUsageDigitalSignature,
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		}, &key.PublicKey)
		return &tls.Config{
			MinVersion:   tls.VersionTLS12,
			Certificates: []tls.Certificate{{Certificate: [][]byte{leaf.Raw}, PrivateKey: key, Leaf: leaf}},
			ClientAuth:   tls.RequestClientCert,
		}
	}
	client := consumer.ClientTLSConfig(identity.AllowIDs(providerID))

	// The same server key and ID from the mesh CA, valid: accepted, so
	// the refusals below are about the issuer and the expiry alone.
	if err := handshake(serverWith(ca.root, ca.rootKey, now.Add(time.Hour)), client); err != nil {
		t.Fatalf("a valid provider certificate was refused: %v", err)
	}
	for _, tc := range []struct {
		name   string
		server *tls.Config
		want   string
	}{
		{"foreign CA", serverWith(foreign, foreignKey, now.Add(time.Hour)), "not trusted"},
		{"expired", serverWith(ca.root, ca.rootKey, now.Add(-time.Minute)), "expired"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := handshake(tc.server, client)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("handshake with a server whose certificate is %s: %v; want an error containing %q", tc.name, err, tc.want)
			}
			t.Logf("refused: %v", err)
		})
	}
}
