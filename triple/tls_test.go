package triple_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/shoalmesh/shoal/triple"
	"github.com/shoalmesh/shoal/triple/internal/testpb"
	"github.com/shoalmesh/shoal/triple/internal/testpb/testpbtriple"
)

// testCert makes a self-signed certificate for 127.0.0.1, and a pool that
// trusts it.
func testCert(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "triple test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

func TestTLSRoundTrip(t *testing.T) {
	cert, pool := testCert(t)
	addr := startServer(t, []triple.ServerOption{triple.WithTLS(&tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})}, nil)
	clientTLS := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}

	for _, p := range []triple.Protocol{triple.ProtocolGRPC, triple.ProtocolTriple} {
		t.Run(p.String(), func(t *testing.T) {
			client := testpbtriple.NewEchoServiceClient(dial(t, addr, triple.WithTLS(clientTLS), triple.WithProtocol(p)))
			resp, err := client.Echo(ctxT(t), &testpb.EchoRequest{Text: "over tls"})
			if err != nil || resp.GetText() != "over tls" {
				t.Fatalf("unary over TLS: %v %v", resp, err)
			}
			st, err := client.EchoServer(ctxT(t), &testpb.EchoRequest{Count: 3})
			if err != nil {
				t.Fatal(err)
			}
			if n := recvCount(t, st); n != 3 {
				t.Fatalf("%d stream messages over TLS, want 3", n)
			}
		})
	}

	// HTTP/1.1 JSON over TLS on the same port (ALPN http/1.1).
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: clientTLS}}
	req, _ := http.NewRequestWithContext(ctxT(t), http.MethodPost, "https://"+addr+echoPath, strings.NewReader(`{"text":"https"}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	hc.CloseIdleConnections()
	if resp.StatusCode != 200 || resp.ProtoMajor != 1 || !strings.Contains(string(body), `"text":"https"`) {
		t.Fatalf("HTTP/%d %d %s", resp.ProtoMajor, resp.StatusCode, body)
	}

	// A client that does not trust the certificate fails to connect.
	untrusted := testpbtriple.NewEchoServiceClient(dial(t, addr, triple.WithTLS(&tls.Config{MinVersion: tls.VersionTLS12})))
	_, err = untrusted.Echo(ctxT(t), &testpb.EchoRequest{})
	if triple.CodeOf(err) != triple.CodeUnavailable || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("untrusted certificate: %v, want UNAVAILABLE naming the certificate", err)
	}
}
