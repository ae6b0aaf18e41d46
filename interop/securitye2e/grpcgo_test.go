package securitye2e_test

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	xdscreds "google.golang.org/grpc/credentials/xds"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/xds"

	"github.com/shoalmesh/shoal/localmesh"
	"github.com/shoalmesh/shoal/proto/greet"
	"github.com/shoalmesh/shoal/proto/greet/greettriple"
	"github.com/shoalmesh/shoal/registry-istio/identity"
	"github.com/shoalmesh/shoal/sdk/mesh"
	"github.com/shoalmesh/shoal/sdk/registry"
	"github.com/shoalmesh/shoal/sdk/tri"
	"github.com/shoalmesh/shoal/triple"
)

const grpcgoHost = "grpcgo-greeter.default.svc.cluster.local"

// testGRPCGoXDSServer: grpc-go's own xDS server (google.golang.org/grpc/xds
// with xDS server credentials), its certificates given as istio-agent gives
// them (a bootstrap file_watcher over files of an istiod-issued
// certificate), under PeerAuthentication STRICT, is called by the Shoal
// consumer over mutual TLS once a DestinationRule says ISTIO_MUTUAL: both
// sides verify the other's istiod identity. A plaintext Triple call is
// refused, so STRICT is in force.
func testGRPCGoXDSServer(ctx context.Context, t *testing.T, m *localmesh.Mesh, disc registry.Discovery, transport *tri.Transport, consW workload) {
	sw := newWorkload(ctx, t, m, "grpcgo-server")
	src := mustSource(ctx, t, m, sw)
	certs := writeAgentFiles(t, src, sw.rootFile)

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := lis.Addr().(*net.TCPAddr).Port
	// STRICT for the namespace: a PeerAuthentication selecting the server
	// by label did not reach its inbound listener (istiod matched no labels
	// for a proxyless server behind a ServiceEntry endpoint). The Shoal
	// providers of this test watch no inbound listener and are unaffected.
	const strict = `
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default-strict, namespace: default}
spec:
  mtls: {mode: STRICT}
`
	if err := m.Apply(ctx, serviceEntry("grpcgo-greeter", grpcgoHost, port, sw.sa)+"---"+strict+"---"+istioMutual("grpcgo-greeter", grpcgoHost)); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := m.Delete(ctx, strict); err != nil {
			t.Error(err)
		}
	}()

	bs := fmt.Sprintf(`{
  "xds_servers": [{"server_uri": %q, "channel_creds": [{"type": "insecure"}], "server_features": ["xds_v3"]}],
  "node": {"id": "sidecar~127.0.0.1~grpcgo-server-0.default~default.svc.cluster.local",
           "metadata": {"GENERATOR": "grpc", "NAMESPACE": "default", "INSTANCE_IPS": "127.0.0.1", "SERVICE_ACCOUNT": %q, "LABELS": {"app": "grpcgo-greeter"}}},
  "certificate_providers": {"default": {"plugin_name": "file_watcher", "config": {
    "certificate_file": %q, "private_key_file": %q, "ca_certificate_file": %q, "refresh_interval": "900s"}}},
  "server_listener_resource_name_template": "xds.istio.io/grpc/lds/inbound/%%s"
}`, m.IstiodAddr(0), sw.sa, certs[0], certs[1], certs[2])
	creds, err := xdscreds.NewServerCredentials(xdscreds.ServerOptions{FallbackCreds: insecure.NewCredentials()})
	if err != nil {
		t.Fatal(err)
	}
	serving := make(chan error, 8)
	srv, err := xds.NewGRPCServer(grpc.Creds(creds), xds.BootstrapContentsForTesting([]byte(bs)),
		xds.ServingModeCallback(func(_ net.Addr, a xds.ServingModeChangeArgs) {
			if a.Mode == connectivity.ServingModeServing {
				serving <- nil
			} else if a.Err != nil {
				serving <- a.Err
			}
		}))
	if err != nil {
		t.Fatal(err)
	}
	greet.RegisterGreetServiceServer(srv, grpcGoGreeter{})
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(lis) }()
	defer func() {
		srv.Stop()
		<-done
	}()
	wait, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for ready := false; !ready; {
		select {
		case err := <-serving:
			if err == nil {
				ready = true
			} else {
				t.Logf("grpc-go xDS server not serving yet: %v", err)
			}
		case <-wait.Done():
			t.Fatal("grpc-go's xDS server got no inbound listener from istiod within 60s")
		}
	}

	// STRICT reaches the server in a later push than its first listener:
	// wait until a plaintext Triple call is refused.
	plain, err := triple.Dial(fmt.Sprintf("tri://127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = plain.Close() }()
	plainClient := greettriple.NewGreetServiceClient(plain)
	refused := false
	for range 300 {
		pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
		resp, err := plainClient.Greet(pctx, &greet.GreetRequest{Name: "plaintext"})
		pcancel()
		if err != nil {
			refused = true
			t.Logf("plaintext call refused under STRICT: %v", err)
			break
		}
		if resp.GetServedBy() != "grpc-go plaintext" {
			t.Fatalf("plaintext call served by %q", resp.GetServedBy())
		}
		// The server is still on its plaintext listener: wait for istiod's
		// next push rather than spin.
		select {
		case err := <-serving:
			if err != nil {
				t.Logf("grpc-go xDS server: %v", err)
			}
		case <-time.After(100 * time.Millisecond):
		}
	}
	if !refused {
		t.Fatal("grpc-go's xDS server still serves plaintext 300 calls after PeerAuthentication STRICT")
	}

	waitForTLS(ctx, t, disc, grpcgoHost, (*mesh.TLS).Secure)
	ref := newMeshRef(t, disc, transport, grpcgoHost)
	defer func() { _ = ref.Close() }()
	resp, err := greettriple.NewGreetServiceClient(tri.NewClient(ref)).Greet(ctx, &greet.GreetRequest{Name: "shoal"})
	if err != nil {
		t.Fatalf("Shoal consumer to grpc-go's xDS server over mTLS: %v", err)
	}
	if want := "grpc-go mtls from " + consW.id().String(); resp.GetServedBy() != want {
		t.Fatalf("served by %q, want %q", resp.GetServedBy(), want)
	}
}

// grpcGoGreeter answers with the SPIFFE ID of the client certificate.
type grpcGoGreeter struct {
	greet.UnimplementedGreetServiceServer
}

func (grpcGoGreeter) Greet(ctx context.Context, _ *greet.GreetRequest) (*greet.GreetResponse, error) {
	p, _ := peer.FromContext(ctx)
	ti, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(ti.State.PeerCertificates) == 0 {
		return &greet.GreetResponse{ServedBy: "grpc-go plaintext"}, nil
	}
	var uris []string
	for _, u := range ti.State.PeerCertificates[0].URIs {
		uris = append(uris, u.String())
	}
	return &greet.GreetResponse{ServedBy: "grpc-go mtls from " + strings.Join(uris, ",")}, nil
}

// writeAgentFiles writes src's certificate, key and the root as istio-agent
// writes them for a grpc-agent pod, and returns the three paths.
func writeAgentFiles(t *testing.T, src *identity.Source, rootFile string) [3]string {
	t.Helper()
	cert, err := src.Certificate()
	if err != nil {
		t.Fatal(err)
	}
	key, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	var chain []byte
	for _, der := range cert.Certificate {
		chain = append(chain, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	root, err := os.ReadFile(rootFile)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	paths := [3]string{filepath.Join(dir, "cert-chain.pem"), filepath.Join(dir, "key.pem"), filepath.Join(dir, "root-cert.pem")}
	for i, b := range [][]byte{chain, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: key}), root} {
		if err := os.WriteFile(paths[i], b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return paths
}
