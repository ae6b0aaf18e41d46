package identity_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shoalmesh/shoal/registry-istio/bootstrap"
	"github.com/shoalmesh/shoal/registry-istio/identity"
	"github.com/shoalmesh/shoal/sdk/mesh"
)

// agentFiles writes what istio-agent writes for proxyless gRPC: a
// certificate chain (leaf, root) for id signed by ca, its key and the root.
type agentFiles struct {
	t   *testing.T
	ca  *fakeCA
	dir string
}

func (a agentFiles) config() bootstrap.FileWatcher {
	return bootstrap.FileWatcher{
		CertificateFile:   filepath.Join(a.dir, "cert-chain.pem"),
		PrivateKeyFile:    filepath.Join(a.dir, "key.pem"),
		CACertificateFile: filepath.Join(a.dir, "root-cert.pem"),
		RefreshInterval:   10 * time.Millisecond,
	}
}

// issue writes a new certificate for id, its key and the root, and
// returns the certificate.
func (a agentFiles) issue(id identity.ID) *x509.Certificate {
	a.t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		a.t.Fatal(err)
	}
	u, _ := url.Parse(id.String())
	leaf := sign(a.t, a.ca.root, a.ca.rootKey, &x509.Certificate{
		URIs:        []*url.URL{u},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		NotBefore:   time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour),
	}, &key.PublicKey)
	fw := a.config()
	chain := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leaf.Raw}), a.ca.rootPEM...)
	a.write(fw.CertificateFile, chain)
	a.writeKey(key)
	a.write(fw.CACertificateFile, a.ca.rootPEM)
	return leaf
}

func (a agentFiles) writeKey(key *ecdsa.PrivateKey) {
	a.t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		a.t.Fatal(err)
	}
	a.write(a.config().PrivateKeyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}

// write replaces name atomically (a new file renamed over it), so the
// Source never reads a file half written.
func (a agentFiles) write(name string, b []byte) {
	a.t.Helper()
	if err := os.WriteFile(name+".new", b, 0o600); err != nil {
		a.t.Fatal(err)
	}
	if err := os.Rename(name+".new", name); err != nil {
		a.t.Fatal(err)
	}
}

// TestFromFiles: the certificates istio-agent writes serve as the workload
// identity, interoperate with one from the CA directly, and are reloaded
// when rewritten; a half-written rotation is logged once and skipped.
func TestFromFiles(t *testing.T) {
	ca := newFakeCA(t, time.Hour)
	ca.accept("provider-token", providerID)
	provider := newSource(t, ca, writeToken(t, t.TempDir(), "provider-token"))
	files := agentFiles{t: t, ca: ca, dir: t.TempDir()}
	first := files.issue(consumerID)

	logs := &logRecords{}
	warned := make(chan struct{}, 1)
	onUpdate, got := updates()
	src, err := identity.FromFiles(files.config(), identity.WithLogger(slog.New(notifying{logs, warned})), onUpdate)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = src.Close() }()
	if src.ID() != consumerID || src.Leaf().SerialNumber.Cmp(first.SerialNumber) != 0 {
		t.Fatalf("ID %v serial %v, want %v %v", src.ID(), src.Leaf().SerialNumber, consumerID, first.SerialNumber)
	}
	if c := next(t, got, time.Second); len(c.Certificate) != 1 {
		t.Fatalf("chain of %d certificates, want the leaf alone (peers have the root)", len(c.Certificate))
	}
	cfg, err := src.ClusterTLS(&mesh.TLS{Mode: mesh.TLSIstioMutual, PeerIDs: []string{providerID.String()}})
	if err != nil {
		t.Fatal(err)
	}
	var serverSaw identity.ID
	if err := handshake(provider.ServerTLSConfig(func(id identity.ID) error { serverSaw = id; return nil }), cfg); err != nil || serverSaw != consumerID {
		t.Fatalf("mutual TLS with the file identity: %v (server saw %v)", err, serverSaw)
	}

	// The key file alone rewritten (a rotation caught half way): not
	// loaded, logged once, the current certificate keeps serving.
	otherKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	files.writeKey(otherKey)
	select {
	case <-warned:
	case <-time.After(10 * time.Second):
		t.Fatal("no warning within 10s of an inconsistent certificate/key pair")
	}
	if src.Leaf().SerialNumber.Cmp(first.SerialNumber) != 0 {
		t.Fatal("an inconsistent certificate/key pair replaced the current certificate")
	}

	second := files.issue(consumerID)
	if c := next(t, got, 10*time.Second); c.Leaf.SerialNumber.Cmp(second.SerialNumber) != 0 {
		t.Fatalf("reloaded serial %v, want %v", c.Leaf.SerialNumber, second.SerialNumber)
	}
	if err := handshake(provider.ServerTLSConfig(nil), cfg); err != nil {
		t.Fatalf("mutual TLS after the reload: %v", err)
	}
	// The rewrite above may be seen half done once more (certificate or
	// key first); repeated reads of one bad state add no warning.
	if n := logs.count(slog.LevelWarn, "do not load"); n < 1 || n > 2 {
		t.Fatalf("%d warnings about inconsistent files, want 1 or 2", n)
	}
}

func TestFromFilesAndBootstrapErrors(t *testing.T) {
	ca := newFakeCA(t, time.Hour)
	files := agentFiles{t: t, ca: ca, dir: t.TempDir()}
	if _, err := identity.FromFiles(files.config()); err == nil || !strings.Contains(err.Error(), "cert-chain.pem: no such file") {
		t.Fatalf("missing files: %v", err)
	}
	other, _ := newRoot(t, "another mesh")
	files.issue(consumerID)
	if err := os.WriteFile(files.config().CACertificateFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: other.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := identity.FromFiles(files.config()); err == nil || !strings.Contains(err.Error(), "does not verify against the root in") {
		t.Fatalf("foreign root: %v", err)
	}

	for _, tc := range []struct {
		name    string
		cfg     *bootstrap.Config
		wantErr string
	}{
		{"no providers", &bootstrap.Config{}, `no certificate provider "default"`},
		{"another plugin", &bootstrap.Config{CertificateProviders: map[string]bootstrap.CertificateProvider{"default": {Plugin: "meshca"}}}, `plugin "meshca"; Shoal reads only file_watcher`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := identity.FromBootstrap(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
		})
	}
}

// notifying is a log handler that also signals each warning.
type notifying struct {
	*logRecords
	warned chan<- struct{}
}

func (n notifying) Handle(ctx context.Context, r slog.Record) error {
	err := n.logRecords.Handle(ctx, r)
	if r.Level == slog.LevelWarn {
		select {
		case n.warned <- struct{}{}:
		default:
		}
	}
	return err
}
