package identity_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/url"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	securityv1alpha1 "istio.io/api/security/v1alpha1"

	"github.com/shoalmesh/shoal/registry-istio/identity"
)

// fakeCA is an in-process stand-in for istiod's CA, for unit tests only:
// it serves IstioCertificateService/CreateCertificate over TLS with a
// serving certificate for istiod.istio-system.svc, accepts the tokens it
// was told about, and signs P-256 CSRs with the identity of the token, as
// istiod does (leaf then root, URI SAN only). interop/securitye2e runs the
// same client against the real istiod.
type fakeCA struct {
	securityv1alpha1.UnimplementedIstioCertificateServiceServer

	root    *x509.Certificate
	rootKey *ecdsa.PrivateKey
	rootPEM []byte
	addr    string

	mu       sync.Mutex
	ttl      time.Duration          // validity when the request asks for none
	tokens   map[string]identity.ID // accepted tokens
	seen     []string               // tokens of every request, in order
	requests int
	failNext int  // answer Unavailable to this many requests
	down     bool // answer Unavailable to every request
}

// testingT is the part of *testing.T the fake CA uses (an Example passes
// its own).
type testingT interface {
	Helper()
	Fatal(args ...any)
	Cleanup(func())
}

// newFakeCA starts a fake CA on loopback, stopped when t ends.
func newFakeCA(t testingT, ttl time.Duration) *fakeCA {
	t.Helper()
	root, rootKey := newRoot(t, "fake mesh root")
	ca := &fakeCA{
		root: root, rootKey: rootKey, ttl: ttl,
		rootPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: root.Raw}),
		tokens:  map[string]identity.ID{},
	}
	servingKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serving := sign(t, root, rootKey, &x509.Certificate{
		DNSNames:    []string{identity.DefaultServerName},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		NotBefore:   time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour),
	}, &servingKey.PublicKey)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.Creds(credentials.NewTLS(&tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{{Certificate: [][]byte{serving.Raw}, PrivateKey: servingKey}},
	})))
	securityv1alpha1.RegisterIstioCertificateServiceServer(srv, ca)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	ca.addr = lis.Addr().String()
	return ca
}

// accept makes token valid for the workload id.
func (ca *fakeCA) accept(token string, id identity.ID) {
	ca.mu.Lock()
	defer ca.mu.Unlock()
	ca.tokens[token] = id
}

func (ca *fakeCA) setDown(down bool) {
	ca.mu.Lock()
	defer ca.mu.Unlock()
	ca.down = down
}

func (ca *fakeCA) setFailNext(n int) {
	ca.mu.Lock()
	defer ca.mu.Unlock()
	ca.failNext = n
}

// stats returns the number of requests and the tokens they carried.
func (ca *fakeCA) stats() (int, []string) {
	ca.mu.Lock()
	defer ca.mu.Unlock()
	return ca.requests, append([]string(nil), ca.seen...)
}

func (ca *fakeCA) CreateCertificate(ctx context.Context, req *securityv1alpha1.IstioCertificateRequest) (*securityv1alpha1.IstioCertificateResponse, error) {
	ca.mu.Lock()
	defer ca.mu.Unlock()
	ca.requests++
	md, _ := metadata.FromIncomingContext(ctx)
	var token string
	if v := md.Get("authorization"); len(v) == 1 {
		token = strings.TrimPrefix(v[0], "Bearer ")
	}
	ca.seen = append(ca.seen, token)
	if ca.down || ca.failNext > 0 {
		if ca.failNext > 0 {
			ca.failNext--
		}
		return nil, status.Error(codes.Unavailable, "fake CA is down")
	}
	id, ok := ca.tokens[token]
	if !ok {
		return nil, status.Error(codes.Unauthenticated, "request authenticate failure")
	}
	b, _ := pem.Decode([]byte(req.GetCsr()))
	if b == nil {
		return nil, status.Error(codes.InvalidArgument, "no PEM CSR")
	}
	csr, err := x509.ParseCertificateRequest(b.Bytes)
	if err != nil || csr.CheckSignature() != nil {
		return nil, status.Error(codes.InvalidArgument, "bad CSR")
	}
	ttl := ca.ttl
	if req.GetValidityDuration() > 0 {
		ttl = time.Duration(req.GetValidityDuration()) * time.Second
	}
	u, _ := url.Parse(id.String())
	now := time.Now()
	leaf := signCert(ca.root, ca.rootKey, &x509.Certificate{
		URIs:        []*url.URL{u},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		NotBefore:   now.Add(-2 * time.Minute), NotAfter: now.Add(ttl),
	}, csr.PublicKey)
	if leaf == nil {
		return nil, status.Error(codes.Internal, "sign failed")
	}
	return &securityv1alpha1.IstioCertificateResponse{CertChain: []string{
		string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leaf.Raw})),
		string(ca.rootPEM),
	}}, nil
}

// newRoot makes a self-signed CA certificate.
func newRoot(t testingT, name string) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{Organization: []string{name}},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c, key
}

// sign issues tmpl for pub under the CA, failing t on error.
func sign(t testingT, ca *x509.Certificate, caKey *ecdsa.PrivateKey, tmpl *x509.Certificate, pub any) *x509.Certificate {
	t.Helper()
	c := signCert(ca, caKey, tmpl, pub)
	if c == nil {
		t.Fatal("signing a test certificate failed")
	}
	return c
}

// signCert issues tmpl for pub under the CA; nil on error.
func signCert(ca *x509.Certificate, caKey *ecdsa.PrivateKey, tmpl *x509.Certificate, pub any) *x509.Certificate {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	if err != nil {
		return nil
	}
	tmpl.SerialNumber = serial
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, pub, caKey)
	if err != nil {
		return nil
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil
	}
	return c
}
