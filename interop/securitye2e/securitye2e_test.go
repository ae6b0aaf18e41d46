package securitye2e_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shoalmesh/shoal/interop/internal/e2etest"

	"go.uber.org/goleak"

	"github.com/shoalmesh/shoal/localmesh"
	"github.com/shoalmesh/shoal/registry-istio/identity"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(e2etest.IgnoreControlPlane...); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

const ns = "default"

// workload is what a pod of a ServiceAccount would have mounted: the
// projected token and the istio-ca-root-cert ConfigMap.
type workload struct {
	sa        string
	tokenFile string
	rootFile  string
}

func (w workload) id() identity.ID {
	return identity.ID{TrustDomain: "cluster.local", Namespace: ns, ServiceAccount: w.sa}
}

// newWorkload creates ServiceAccount sa and writes its istio-ca token and
// the mesh root into a directory, as the kubelet would mount them.
func newWorkload(ctx context.Context, t *testing.T, m *localmesh.Mesh, sa string) workload {
	t.Helper()
	if err := m.CreateServiceAccount(ctx, ns, sa); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	w := workload{sa: sa, tokenFile: filepath.Join(dir, "tokens", "istio-token"), rootFile: filepath.Join(dir, "istio", "root-cert.pem")}
	if err := m.WriteServiceAccountToken(ctx, ns, sa, localmesh.IstioCAAudience, time.Hour, w.tokenFile); err != nil {
		t.Fatal(err)
	}
	root, err := m.RootCert(ctx, ns)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(w.rootFile), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(w.rootFile, root, 0o600); err != nil {
		t.Fatal(err)
	}
	return w
}

// source gets w's certificate from istiod.
func (w workload) source(ctx context.Context, m *localmesh.Mesh, opts ...identity.Option) (*identity.Source, error) {
	return identity.New(ctx, m.IstiodTLSAddr(0), append([]identity.Option{
		identity.WithRootCertFile(w.rootFile),
		identity.WithTokenFile(w.tokenFile),
		identity.WithServerName(localmesh.IstiodServerName),
		identity.WithLogger(quiet),
	}, opts...)...)
}

// TestSecurity runs the real control plane once (kube-apiserver, etcd,
// one istiod) for the identity cases.
func TestSecurity(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real kube-apiserver and istiod; run without -short (make test)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	m, err := localmesh.Start(ctx, localmesh.WithoutControllerManager(), localmesh.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Stop()
	t.Run("WorkloadCertificate", func(t *testing.T) { testWorkloadCertificate(ctx, t, m) })
	t.Run("Renewal", func(t *testing.T) { testRenewal(ctx, t, m) })
	t.Run("MutualTLSBetweenWorkloads", func(t *testing.T) { testMutualTLS(ctx, t, m) })
	t.Run("WrongAudienceToken", func(t *testing.T) { testWrongAudience(ctx, t, m) })
	t.Run("XDSOverTLSWithToken", func(t *testing.T) { testXDSOverTLS(ctx, t, m) })
	// Last: it restarts istiod.
	t.Run("RenewalAcrossIstiodRestart", func(t *testing.T) { testRenewalAcrossIstiodRestart(ctx, t, m) })
}

// testWorkloadCertificate: istiod issues a P-256 certificate whose only
// URI SAN is the ServiceAccount's SPIFFE ID, chained to the root of the
// istio-ca-root-cert ConfigMap.
func testWorkloadCertificate(ctx context.Context, t *testing.T, m *localmesh.Mesh) {
	w := newWorkload(ctx, t, m, "consumer")
	s, err := w.source(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Close() }()

	leaf := s.Leaf()
	if len(leaf.URIs) != 1 || leaf.URIs[0].String() != w.id().String() {
		t.Fatalf("certificate URI SANs = %v, want exactly [%s]", leaf.URIs, w.id())
	}
	if s.ID() != w.id() {
		t.Fatalf("ID() = %v, want %v", s.ID(), w.id())
	}
	if pub, ok := leaf.PublicKey.(*ecdsa.PublicKey); !ok || pub.Curve != elliptic.P256() {
		t.Fatalf("certificate key is %T, want ECDSA P-256", leaf.PublicKey)
	}
	assertChainedToConfigMapRoot(ctx, t, m, s)
}

// assertChainedToConfigMapRoot verifies s's current chain against the root
// read afresh from the ConfigMap (not the Source's own pool).
func assertChainedToConfigMapRoot(ctx context.Context, t *testing.T, m *localmesh.Mesh, s *identity.Source) {
	t.Helper()
	root, err := m.RootCert(ctx, ns)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(root) {
		t.Fatal("the istio-ca-root-cert ConfigMap holds no certificate")
	}
	cert, err := s.Certificate()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := identity.VerifyPeer(cert.Certificate, pool, time.Now()); err != nil {
		t.Fatalf("the certificate does not chain to the ConfigMap's root: %v", err)
	}
}

// testRenewal asks istiod for 20-second certificates: the Source renews
// on its own with a second request, which carries a token the test
// rewrote in between (a rotated projected token), and gets a new
// certificate with the same identity, again chained to the root.
func testRenewal(ctx context.Context, t *testing.T, m *localmesh.Mesh) {
	w := newWorkload(ctx, t, m, "renewer")
	got := make(chan *tls.Certificate, 8)
	s, err := w.source(ctx, m, identity.WithTTL(20*time.Second), identity.WithOnUpdate(func(c *tls.Certificate) {
		select {
		case got <- c:
		default:
		}
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Close() }()
	first := <-got
	if life := time.Until(first.Leaf.NotAfter); life > time.Minute {
		t.Fatalf("istiod issued a certificate valid %v more; the test asked for 20s", life)
	}
	// The kubelet rotates the token: the renewal must send the new one.
	if err := m.WriteServiceAccountToken(ctx, ns, w.sa, localmesh.IstioCAAudience, time.Hour, w.tokenFile); err != nil {
		t.Fatal(err)
	}
	var second *tls.Certificate
	select {
	case second = <-got:
	case <-time.After(time.Minute):
		t.Fatal("no renewal within a minute of a 20s certificate")
	}
	if second.Leaf.SerialNumber.Cmp(first.Leaf.SerialNumber) == 0 {
		t.Fatal("the renewal returned the first certificate")
	}
	if len(second.Leaf.URIs) != 1 || second.Leaf.URIs[0].String() != w.id().String() {
		t.Fatalf("renewed certificate URI SANs = %v, want [%s]", second.Leaf.URIs, w.id())
	}
	assertChainedToConfigMapRoot(ctx, t, m, s)
}

// testMutualTLS: two workloads with certificates from istiod complete a
// TLS handshake with each other through the Source's TLS configurations,
// each verifying the other's SPIFFE ID.
func testMutualTLS(ctx context.Context, t *testing.T, m *localmesh.Mesh) {
	cw, pw := newWorkload(ctx, t, m, "client-a"), newWorkload(ctx, t, m, "server-b")
	client, err := cw.source(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = client.Close() }()
	server, err := pw.source(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = server.Close() }()

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = lis.Close() }()
	type result struct {
		peer identity.ID
		err  error
	}
	res := make(chan result, 1)
	go func() {
		var r result
		defer func() { res <- r }()
		conn, err := lis.Accept()
		if err != nil {
			r.err = err
			return
		}
		defer func() { _ = conn.Close() }()
		tc := tls.Server(conn, server.ServerTLSConfig(func(id identity.ID) error { r.peer = id; return nil }))
		_ = tc.SetDeadline(time.Now().Add(10 * time.Second))
		if r.err = tc.Handshake(); r.err == nil {
			_, r.err = io.Copy(tc, tc) // echo until the client closes
		}
	}()
	conn, err := tls.Dial("tcp", lis.Addr().String(), client.ClientTLSConfig(identity.AllowIDs(pw.id())))
	if err != nil {
		t.Fatalf("client-a to server-b over mutual TLS: %v", err)
	}
	if _, err := conn.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(conn, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("echo over mutual TLS = %q, %v", buf, err)
	}
	_ = conn.Close()
	r := <-res
	if r.err != nil {
		t.Fatalf("server: %v", r.err)
	}
	if r.peer != cw.id() {
		t.Fatalf("server saw client %v, want %v", r.peer, cw.id())
	}
}

// testWrongAudience: a token for the API server's default audience (not
// istio-ca) is refused by istiod; New fails at once naming the token file
// and istiod's answer.
func testWrongAudience(ctx context.Context, t *testing.T, m *localmesh.Mesh) {
	w := newWorkload(ctx, t, m, "wrong-audience")
	if err := m.WriteServiceAccountToken(ctx, ns, w.sa, "https://kubernetes.default.svc.cluster.local", time.Hour, w.tokenFile); err != nil {
		t.Fatal(err)
	}
	nctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	s, err := w.source(nctx, m)
	if err == nil {
		_ = s.Close()
		t.Fatal("istiod issued a certificate for a token without the istio-ca audience")
	}
	t.Logf("error: %v", err)
	for _, want := range []string{w.tokenFile, "Unauthenticated", "authenticate"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
	if nctx.Err() != nil {
		t.Errorf("New retried until its context ended instead of failing at once: %v", err)
	}
}
