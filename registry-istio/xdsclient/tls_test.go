package xdsclient_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/shoalmesh/shoal/registry-istio/bootstrap"
	"github.com/shoalmesh/shoal/registry-istio/xdsclient"
	"github.com/shoalmesh/shoal/registry-istio/xdsresource"
	"github.com/shoalmesh/shoal/registry-istio/xdstest"
)

// testPKI makes a CA and a serving certificate for istiod's name, and
// writes the CA's PEM to a file.
func testPKI(t *testing.T) (serverCert tls.Certificate, caFile string) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test istio CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "istiod"},
		DNSNames:  []string{"istiod.istio-system.svc"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caFile = filepath.Join(t.TempDir(), "root-cert.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, caFile
}

// Over TLS (istiod's 15012) the client verifies istiod's certificate with
// the root certificate and sends the service account token on the stream.
func TestTLSWithToken(t *testing.T) {
	cert, caFile := testPKI(t)
	srv := xdstest.NewServer(t, xdstest.WithGRPCOptions(grpc.Creds(credentials.NewTLS(&tls.Config{
		Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12,
	}))))
	srv.Set(xdstest.Service(host, port))
	token := filepath.Join(t.TempDir(), "istio-token")
	if err := os.WriteFile(token, []byte("header.payload.signature\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(srv.Address())
	cfg.TLS = &bootstrap.TLS{RootCertFile: caFile, ServerName: "istiod.istio-system.svc", TokenFile: token}
	c, err := xdsclient.New(cfg, xdsclient.WithLogger(quietLogger()), xdsclient.WithBackoff(10*time.Millisecond, 100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	lw := newRecorder[*xdsresource.Listener]()
	defer c.WatchListener(listenerName, lw)()
	if e := lw.next(t); e.kind != changed {
		t.Fatalf("event %+v", e)
	}
	req := waitRequest(t, srv, 0, isType(xdsresource.ListenerType))
	if got := srv.StreamMetadata(req.Stream).Get("authorization"); len(got) != 1 || got[0] != "Bearer header.payload.signature" {
		t.Fatalf("authorization = %q", got)
	}
}

// A server whose certificate the root does not vouch for is refused, and
// the status says so.
func TestTLSWrongRoot(t *testing.T) {
	cert, _ := testPKI(t)
	_, otherCA := testPKI(t)
	srv := xdstest.NewServer(t, xdstest.WithGRPCOptions(grpc.Creds(credentials.NewTLS(&tls.Config{
		Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12,
	}))))
	cfg := testConfig(srv.Address())
	cfg.TLS = &bootstrap.TLS{RootCertFile: otherCA, ServerName: "istiod.istio-system.svc"}
	c, err := xdsclient.New(cfg, xdsclient.WithLogger(quietLogger()), xdsclient.WithBackoff(10*time.Millisecond, 100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	defer c.WatchListener(listenerName, newRecorder[*xdsresource.Listener]())()
	waitFor(t, "a TLS failure in the status", func() bool {
		st := c.Status()
		return st.State == xdsclient.TransientFailure && strings.Contains(st.LastConnError, "certificate")
	})
	if n := len(srv.Requests()); n != 0 {
		t.Fatalf("%d requests reached the server", n)
	}
}

func TestNewRejectsBadTLSFiles(t *testing.T) {
	cfg := testConfig("127.0.0.1:15012")
	cfg.TLS = &bootstrap.TLS{RootCertFile: filepath.Join(t.TempDir(), "missing.pem"), ServerName: "istiod.istio-system.svc"}
	if _, err := xdsclient.New(cfg); err == nil || !strings.Contains(err.Error(), "set SHOAL_XDS_ROOT_CERT") {
		t.Fatalf("err = %v", err)
	}
	notPEM := filepath.Join(t.TempDir(), "root.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.TLS.RootCertFile = notPEM
	if _, err := xdsclient.New(cfg); err == nil || !strings.Contains(err.Error(), "holds no PEM certificate") {
		t.Fatalf("err = %v", err)
	}
	if _, err := xdsclient.New(nil); err == nil {
		t.Fatal("nil bootstrap accepted")
	}
}
