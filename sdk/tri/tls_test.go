package tri_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"math/big"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/shoalmesh/shoal/triple"

	"github.com/shoalmesh/shoal/sdk/cluster"
	"github.com/shoalmesh/shoal/sdk/consumer"
	"github.com/shoalmesh/shoal/sdk/mesh"
	"github.com/shoalmesh/shoal/sdk/registry"
	"github.com/shoalmesh/shoal/sdk/tri"
)

// selfSigned is a P-256 certificate for 127.0.0.1, for a TLS server in
// tests.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
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

// A cluster whose policy asks for TLS is called with Triple over TLS,
// configured by the transport's ClusterTLS for that cluster; a transport
// without one refuses to call it rather than fall back to plaintext.
func TestClusterTLSDialsTripleOverTLS(t *testing.T) {
	cert, pool := selfSigned(t)
	srv := triple.NewServer(triple.WithTLS(&tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}))
	if err := srv.Register(&echoDesc, &echo{name: "tls"}); err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(lis) }()
	defer srv.Close()

	policy := &mesh.TLS{Mode: mesh.TLSIstioMutual, PeerIDs: []string{"spiffe://cluster.local/ns/default/sa/echo"}}
	f := &registry.Feed{}
	snap, err := mesh.NewSnapshot(mesh.Spec{Revision: "1", Services: []mesh.Service{{
		Name: "test.Echo", Endpoints: []mesh.Endpoint{{Address: lis.Addr().String()}}, Policy: mesh.ClusterPolicy{TLS: policy},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	f.Publish(func(registry.Key) *mesh.Snapshot { return snap })
	var asked atomic.Pointer[mesh.TLS]
	secured := tri.NewTransport().WithClusterTLS(func(tp *mesh.TLS) (*tls.Config, error) {
		asked.Store(tp)
		return &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}, nil
	})
	invoke := func(tr consumer.Transport) (string, error) {
		ref, err := consumer.New(registry.Key{Interface: "test.Echo"}, feedDiscovery{f}, tr, consumer.WithStrategy(cluster.Failfast()))
		if err != nil {
			t.Fatal(err)
		}
		defer ref.Close()
		out := new(wrapperspb.StringValue)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err = tri.NewClient(ref).Invoke(ctx, "/test.Echo/Echo", wrapperspb.String("hi"), out)
		return out.GetValue(), err
	}

	if got, err := invoke(secured); err != nil || !strings.HasPrefix(got, "hi from tls") {
		t.Fatalf("call over TLS: %q, %v", got, err)
	}
	if got := asked.Load(); got == nil || got.Key() != policy.Key() {
		t.Fatalf("ClusterTLS asked for %+v, want the cluster's %+v", got, policy)
	}
	if _, err := invoke(tri.NewTransport()); err == nil || !strings.Contains(err.Error(), "asks for istio_mutual TLS but the transport has no workload identity") {
		t.Fatalf("call without identity: %v", err)
	}
}

// feedDiscovery serves a registry.Feed as a Discovery.
type feedDiscovery struct{ f *registry.Feed }

func (d feedDiscovery) Watch(_ context.Context, k registry.Key) (registry.Watcher, error) {
	return d.f.Watch(k), nil
}
