package identity_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/shoalmesh/shoal/registry-istio/identity"
)

func TestParseID(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want identity.ID
		err  string
	}{
		{in: "spiffe://cluster.local/ns/default/sa/consumer", want: consumerID},
		{in: "https://cluster.local/ns/default/sa/consumer", err: "not a SPIFFE ID"},
		{in: "spiffe://cluster.local/ns/default", err: "not an Istio SPIFFE ID"},
		{in: "spiffe://cluster.local/ns//sa/x", err: "not an Istio SPIFFE ID"},
		{in: "spiffe:///ns/a/sa/b", err: "not a SPIFFE ID"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := identity.ParseID(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("ParseID = %v, %v; want an error containing %q", got, err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want || got.String() != tc.in {
				t.Fatalf("ParseID = %v (%q), %v; want %v", got, got.String(), err, tc.want)
			}
		})
	}
}

// TestVerifyPeer checks peer chains: a workload certificate from the root
// passes with its ID; one from a foreign CA, an expired one and one
// without a SPIFFE SAN are refused with errors that say so.
func TestVerifyPeer(t *testing.T) {
	root, rootKey := newRoot(t, "mesh")
	foreign, foreignKey := newRoot(t, "foreign")
	roots := x509.NewCertPool()
	roots.AddCert(root)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(consumerID.String())
	now := time.Now()
	leaf := func(ca *x509.Certificate, caKey *ecdsa.PrivateKey, notAfter time.Time, uris ...*url.URL) [][]byte {
		c := sign(t, ca, caKey, &x509.Certificate{
			URIs: uris, NotBefore: now.Add(-time.Hour), NotAfter: notAfter,
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		}, &key.PublicKey)
		return [][]byte{c.Raw}
	}
	for _, tc := range []struct {
		name string
		raw  [][]byte
		err  string
	}{
		{"from the root", leaf(root, rootKey, now.Add(time.Hour), u), ""},
		{"foreign CA", leaf(foreign, foreignKey, now.Add(time.Hour), u), "not trusted"},
		{"expired", leaf(root, rootKey, now.Add(-time.Minute), u), "expired"},
		{"no SPIFFE SAN", leaf(root, rootKey, now.Add(time.Hour)), "no spiffe:// URI SAN"},
		{"no certificate", nil, "sent no certificate"},
		{"garbage", [][]byte{[]byte("x")}, "does not parse"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id, err := identity.VerifyPeer(tc.raw, roots, now)
			if tc.err == "" {
				if err != nil || id != consumerID {
					t.Fatalf("VerifyPeer = %v, %v; want %v", id, err, consumerID)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("VerifyPeer = %v, %v; want an error containing %q", id, err, tc.err)
			}
		})
	}
}
