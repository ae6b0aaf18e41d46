package istiometrics_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"net/url"
	"testing"
	"time"

	"github.com/shoalmesh/shoal/observability/istiometrics"
)

// testCA issues certificates for a local TLS pair, as istiod's CA does: a
// SPIFFE URI SAN naming the workload.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newTestCA(t testing.TB) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{Organization: []string{"cluster.local"}},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

// leaf issues a certificate with the given URI SANs (and a DNS name, so
// the client's hostname check passes).
func (ca *testCA) leaf(t testing.TB, serial int64, uris ...string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		DNSNames:    []string{"echo.shop.svc"},
	}
	for _, s := range uris {
		u, err := url.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		tmpl.URIs = append(tmpl.URIs, u)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// handshake runs a TLS handshake over loopback TCP between a server
// requiring and verifying a client certificate and a client presenting
// client (none when nil), and returns the server's view of the connection.
func handshake(t testing.TB, ca *testCA, server tls.Certificate, client *tls.Certificate) *tls.ConnectionState {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	auth := tls.RequireAndVerifyClientCert
	if client == nil {
		auth = tls.NoClientCert
	}
	type result struct {
		cs  tls.ConnectionState
		err error
	}
	done := make(chan result, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			done <- result{err: err}
			return
		}
		defer c.Close()
		sc := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{server}, ClientAuth: auth, ClientCAs: ca.pool, MinVersion: tls.VersionTLS13})
		err = sc.Handshake()
		done <- result{cs: sc.ConnectionState(), err: err}
	}()
	cfg := &tls.Config{RootCAs: ca.pool, ServerName: "echo.shop.svc", MinVersion: tls.VersionTLS13}
	if client != nil {
		cfg.Certificates = []tls.Certificate{*client}
	}
	cc, err := tls.Dial("tcp", l.Addr().String(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	// With TLS 1.3 the client's handshake may return before the server
	// has checked the client's certificate: wait for the server's side.
	r := <-done
	if r.err != nil {
		t.Fatalf("server handshake: %v", r.err)
	}
	return &r.cs
}

type tlsStateKey struct{}

// withTLSState is the hook a transport would install: the served call's
// context carries its connection's TLS state.
func withTLSState(ctx context.Context, cs *tls.ConnectionState) context.Context {
	return context.WithValue(ctx, tlsStateKey{}, cs)
}

func tlsStateOf(ctx context.Context) *tls.ConnectionState {
	cs, _ := ctx.Value(tlsStateKey{}).(*tls.ConnectionState)
	return cs
}

func TestPeerPrincipal(t *testing.T) {
	ca := newTestCA(t)
	server := ca.leaf(t, 2, "spiffe://cluster.local/ns/shop/sa/echo")
	frontend := ca.leaf(t, 3, "https://example.com/not-spiffe", "spiffe://cluster.local/ns/shop/sa/frontend")
	noSPIFFE := ca.leaf(t, 4, "https://example.com/not-spiffe")
	for _, tc := range []struct {
		name string
		cs   *tls.ConnectionState
		want string
	}{
		{"plaintext", nil, ""},
		{"no client certificate", handshake(t, ca, server, nil), ""},
		{"certificate without SPIFFE ID", handshake(t, ca, server, &noSPIFFE), ""},
		{"SPIFFE ID after another URI", handshake(t, ca, server, &frontend), "spiffe://cluster.local/ns/shop/sa/frontend"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := istiometrics.PeerPrincipal(tc.cs); got != tc.want {
				t.Errorf("PeerPrincipal = %q, want %q", got, tc.want)
			}
		})
	}
}
