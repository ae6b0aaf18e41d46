package securitye2e_test

import (
	"context"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	xdscreds "google.golang.org/grpc/credentials/xds"
	_ "google.golang.org/grpc/xds" // the xds:/// resolver, as a grpc-go user enables it

	"github.com/shoalmesh/shoal/localmesh"
	"github.com/shoalmesh/shoal/proto/greet"
	"github.com/shoalmesh/shoal/registry-istio/inbound"
)

// testGRPCGoXDSClient: grpc-go's own xDS client (xds:/// resolver, xDS
// client credentials, a bootstrap whose file_watcher certificate provider
// holds consumer-a's certificate issued by the same istiod) calls the
// guarded Shoal provider under STRICT, over the mutual TLS istiod's
// DestinationRule ISTIO_MUTUAL tells it to use.
func testGRPCGoXDSClient(ctx context.Context, t *testing.T, m *localmesh.Mesh, s *guardedServer, a *client) {
	if err := m.Apply(ctx, `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: `+guardedService+`, namespace: default}
spec:
  host: `+guardedService+`.default.svc.cluster.local
  trafficPolicy: {tls: {mode: ISTIO_MUTUAL}}
`); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cert, err := a.src.Certificate()
	if err != nil {
		t.Fatal(err)
	}
	var chain []byte
	for _, der := range cert.Certificate {
		chain = append(chain, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	keyDER, err := marshalKey(cert.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{
		"cert-chain.pem": chain,
		"key.pem":        pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
	}
	root, err := os.ReadFile(a.w.rootFile)
	if err != nil {
		t.Fatal(err)
	}
	files["root-cert.pem"] = root
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// The bootstrap istio-agent writes for proxyless gRPC, with its
	// certificate files written here instead of by the agent.
	bs := fmt.Sprintf(`{
  "xds_servers": [{"server_uri": %[1]q, "channel_creds": [{"type": "insecure"}], "server_features": ["xds_v3"]}],
  "node": {"id": "sidecar~127.0.0.1~grpcgo-a.%[2]s~%[2]s.svc.cluster.local", "metadata": {"GENERATOR": "grpc", "NAMESPACE": %[2]q, "SERVICE_ACCOUNT": "consumer-a"}},
  "certificate_providers": {"default": {"plugin_name": "file_watcher", "config": {
    "certificate_file": %[3]q, "private_key_file": %[4]q, "ca_certificate_file": %[5]q, "refresh_interval": "600s"}}}
}`, m.IstiodAddr(0), ns, filepath.Join(dir, "cert-chain.pem"), filepath.Join(dir, "key.pem"), filepath.Join(dir, "root-cert.pem"))
	_, port, _ := strings.Cut(s.addr, ":")
	target := "xds:///" + guardedService + ".default.svc.cluster.local:" + port
	cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(cctx, os.Args[0], "-test.run=^TestGRPCGoXDSClientProcess$", "-test.v")
	cmd.Env = append(os.Environ(), "GRPC_XDS_BOOTSTRAP_CONFIG="+bs, "SHOAL_E2E_GRPCGO_XDS_TARGET="+target)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("grpc-go's xDS client via %s: %v\n%s\nserver log:\n%s", target, err, out, s.logs.String())
	}
	n := strings.Count(string(out), "GREETED ")
	if n == 0 {
		t.Fatalf("the grpc-go client reported no call:\n%s", out)
	}
	// The server refuses plaintext and, by AuthorizationPolicy allow-a,
	// anyone but consumer-a: the calls came over mutual TLS with a's
	// certificate.
	if st := s.w.State(); st.Mode != inbound.MutualTLS || !hasPrincipal(st, "spiffe://cluster.local/ns/default/sa/consumer-a") ||
		hasPrincipal(st, "spiffe://cluster.local/ns/default/sa/consumer-b") {
		t.Fatalf("the server was not under STRICT with ALLOW consumer-a only: %+v", st)
	}
	t.Logf("grpc-go's xDS client (file_watcher certificates from istiod's CA) made %d calls to %s under STRICT", n, target)
}

// TestGRPCGoXDSClientProcess is grpc-go's side of testGRPCGoXDSClient, run
// as a child process with GRPC_XDS_BOOTSTRAP_CONFIG set (grpc-go reads its
// bootstrap at start); on its own it does nothing.
func TestGRPCGoXDSClientProcess(t *testing.T) {
	target := os.Getenv("SHOAL_E2E_GRPCGO_XDS_TARGET")
	if target == "" {
		t.Skip("the grpc-go child process of TestServerSecurity")
	}
	creds, err := xdscreds.NewClientCredentials(xdscreds.ClientOptions{FallbackCreds: insecure.NewCredentials()})
	if err != nil {
		t.Fatal(err)
	}
	cc, err := grpc.NewClient(target, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cc.Close() }()
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	c := greet.NewGreetServiceClient(cc)
	for range 10 {
		resp, err := c.Greet(ctx, &greet.GreetRequest{Name: "grpc-go"}, grpc.WaitForReady(true))
		if err != nil {
			t.Fatalf("grpc-go via %s: %v", target, err)
		}
		fmt.Println("GREETED " + resp.GetGreeting())
	}
}
