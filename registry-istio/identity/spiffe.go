package identity

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// ID is an Istio workload's SPIFFE identity:
// spiffe://<TrustDomain>/ns/<Namespace>/sa/<ServiceAccount>.
type ID struct {
	TrustDomain    string
	Namespace      string
	ServiceAccount string
}

// String returns the SPIFFE URI.
func (id ID) String() string {
	return "spiffe://" + id.TrustDomain + "/ns/" + id.Namespace + "/sa/" + id.ServiceAccount
}

// ParseID parses an Istio SPIFFE URI (spiffe://td/ns/x/sa/y).
func ParseID(s string) (ID, error) {
	u, err := url.Parse(s)
	if err != nil {
		return ID{}, fmt.Errorf("identity: %q is not a URI: %w", s, err)
	}
	return idFromURI(u)
}

func idFromURI(u *url.URL) (ID, error) {
	if u.Scheme != "spiffe" || u.Host == "" {
		return ID{}, fmt.Errorf("identity: %q is not a SPIFFE ID; want spiffe://<trust domain>/ns/<namespace>/sa/<service account>", u.String())
	}
	parts := strings.Split(strings.TrimPrefix(u.Path, "/"), "/")
	if len(parts) != 4 || parts[0] != "ns" || parts[2] != "sa" || parts[1] == "" || parts[3] == "" ||
		u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return ID{}, fmt.Errorf("identity: %q is not an Istio SPIFFE ID; want spiffe://<trust domain>/ns/<namespace>/sa/<service account>", u.String())
	}
	return ID{TrustDomain: u.Host, Namespace: parts[1], ServiceAccount: parts[3]}, nil
}

// IDFromCertificate returns the SPIFFE ID of an Istio workload certificate:
// its one spiffe URI SAN.
func IDFromCertificate(c *x509.Certificate) (ID, error) {
	var found []ID
	for _, u := range c.URIs {
		if u.Scheme != "spiffe" {
			continue
		}
		id, err := idFromURI(u)
		if err != nil {
			return ID{}, err
		}
		found = append(found, id)
	}
	switch len(found) {
	case 0:
		return ID{}, errors.New("identity: the certificate has no spiffe:// URI SAN; it is not an Istio workload certificate")
	case 1:
		return found[0], nil
	default:
		return ID{}, fmt.Errorf("identity: the certificate has %d spiffe:// URI SANs; want exactly one", len(found))
	}
}

// VerifyPeer verifies a peer's certificate chain (leaf first, DER, as a
// TLS handshake hands it over) against roots at time now, for client or
// server use, and returns the peer's SPIFFE ID. It does no hostname check:
// Istio certificates name no host. Source.ServerTLSConfig and
// Source.ClientTLSConfig apply it on every connection, resumed ones too.
func VerifyPeer(rawCerts [][]byte, roots *x509.CertPool, now time.Time) (ID, error) {
	certs := make([]*x509.Certificate, len(rawCerts))
	for i, raw := range rawCerts {
		c, err := x509.ParseCertificate(raw)
		if err != nil {
			return ID{}, fmt.Errorf("identity: the peer's certificate %d does not parse: %w", i, err)
		}
		certs[i] = c
	}
	return verifyChain(certs, roots, now)
}

// verifyChain is VerifyPeer on parsed certificates.
func verifyChain(certs []*x509.Certificate, roots *x509.CertPool, now time.Time) (ID, error) {
	if len(certs) == 0 {
		return ID{}, errors.New("identity: the peer sent no certificate")
	}
	if roots == nil {
		return ID{}, errors.New("identity: no root of trust to verify the peer against")
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	leaf := certs[0]
	if _, err := leaf.Verify(x509.VerifyOptions{
		Roots:         roots,
		Intermediates: inter,
		CurrentTime:   now,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	}); err != nil {
		return ID{}, fmt.Errorf("identity: the peer's certificate (%s) is not trusted: %w", describe(leaf), err)
	}
	return IDFromCertificate(leaf)
}

// describe names a certificate in errors by its URI SANs, else its subject.
func describe(c *x509.Certificate) string {
	if len(c.URIs) > 0 {
		s := make([]string, len(c.URIs))
		for i, u := range c.URIs {
			s[i] = u.String()
		}
		return strings.Join(s, ", ")
	}
	return "subject " + c.Subject.String()
}
