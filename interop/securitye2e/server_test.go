package securitye2e_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/shoalmesh/shoal/localmesh"
	"github.com/shoalmesh/shoal/proto/greet"
	"github.com/shoalmesh/shoal/proto/greet/greettriple"
	"github.com/shoalmesh/shoal/registry-istio/bootstrap"
	"github.com/shoalmesh/shoal/registry-istio/identity"
	"github.com/shoalmesh/shoal/registry-istio/inbound"
	"github.com/shoalmesh/shoal/registry-istio/xdsclient"
	"github.com/shoalmesh/shoal/registry-istio/xdsresource"
	"github.com/shoalmesh/shoal/sdk/config"
	"github.com/shoalmesh/shoal/sdk/tri"
	"github.com/shoalmesh/shoal/triple"
)

// The guarded provider: a WorkloadEntry at this loopback address, selected
// by Service guardedService, so that istiod serves its inbound listener.
const (
	guardedIP      = "127.0.0.41"
	guardedService = "guarded"
	guardedSA      = "guarded"
)

// greetHandler answers Greet and GreetServerStream.
type greetHandler struct {
	greettriple.UnimplementedGreetServiceHandler
}

func (greetHandler) Greet(_ context.Context, r *greet.GreetRequest) (*greet.GreetResponse, error) {
	return &greet.GreetResponse{Greeting: "hello " + r.GetName()}, nil
}

func (greetHandler) GreetServerStream(r *greet.GreetRequest, s triple.ServerStreamServer[greet.GreetResponse]) error {
	return s.Send(&greet.GreetResponse{Greeting: "hello " + r.GetName()})
}

// syncBuffer is a log sink the test reads while the server writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// guardedServer is a Triple server of greet.GreetService behind an
// inbound.Guard, its xDS client on istiod's TLS port with its own token,
// its certificate from istiod.
type guardedServer struct {
	addr  string
	guard *inbound.Guard
	w     *inbound.Watcher
	logs  *syncBuffer
	id    identity.ID
	src   *identity.Source
}

// guardedSpec names a guarded provider: its Service (and app label),
// service account and loopback IP, the options of its identity and extra
// options of its Triple server.
type guardedSpec struct {
	service, sa, ip string
	identityOpts    []identity.Option
	serverOpts      []triple.ServerOption
}

func startGuardedServer(ctx context.Context, t *testing.T, m *localmesh.Mesh) *guardedServer {
	t.Helper()
	return startGuarded(ctx, t, m, guardedSpec{service: guardedService, sa: guardedSA, ip: guardedIP})
}

func startGuarded(ctx context.Context, t *testing.T, m *localmesh.Mesh, spec guardedSpec) *guardedServer {
	t.Helper()
	wl := newWorkload(ctx, t, m, spec.sa)
	src, err := wl.source(ctx, m, spec.identityOpts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = src.Close() })
	c, err := xdsclient.New(&bootstrap.Config{
		ServerURI: m.IstiodTLSAddr(0),
		TLS:       &bootstrap.TLS{RootCertFile: wl.rootFile, ServerName: localmesh.IstiodServerName, TokenFile: wl.tokenFile},
		Node: bootstrap.Identity{
			PodName: spec.service + "-0", Namespace: ns, IPs: []string{spec.ip}, ServiceAccount: spec.sa,
			Labels: map[string]string{"app": spec.service},
		}.Node(),
	}, xdsclient.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	logs := &syncBuffer{}
	g := inbound.New(c, src, inbound.WithLogger(slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	t.Cleanup(g.Close)
	// The server an sdk app builds (tri.Servers), with the guard's
	// interceptors and listener wrapper, on a port chosen at Listen.
	servers := tri.NewServers([]tri.Export{{Desc: &greettriple.GreetService_ServiceDesc, Impl: greetHandler{}}},
		append([]triple.ServerOption{
			triple.WithLogger(quiet),
			triple.WithUnaryInterceptors(g.UnaryServerInterceptor()), triple.WithStreamInterceptors(g.StreamServerInterceptor()),
		},
			spec.serverOpts...)...).
		WrapListeners(g.Listen)
	srv, err := servers.Factory()(config.Protocol{Name: "tri", Host: spec.ip, Port: 0}, nil)
	if err != nil {
		t.Fatal(err)
	}
	addr, err := srv.Listen(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	})
	port := addr.(*net.TCPAddr).Port
	s := &guardedServer{addr: addr.String(), guard: g, w: g.Watcher(port), logs: logs, id: wl.id(), src: src}
	// Until istiod knows a workload at this address with a Service on
	// this port, it has no inbound listener for it: not serving.
	rctx, rcancel := context.WithTimeout(ctx, 30*time.Second)
	defer rcancel()
	if err := s.w.Ready(rctx); err != nil {
		t.Fatal(err)
	}
	if st := s.w.State(); st.Mode != inbound.NotServing || !strings.Contains(st.Reason, "has no listener") {
		t.Fatalf("before the provider's Service exists: %+v, want not serving because istiod has no listener", st)
	}
	// Registered as a provider would be: the listener follows.
	if err := m.Apply(ctx, fmt.Sprintf(`
apiVersion: v1
kind: Service
metadata: {name: %[1]s, namespace: default}
spec:
  selector: {app: %[1]s}
  ports: [{name: grpc, port: %[2]d, targetPort: %[2]d, protocol: TCP}]
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: %[1]s-0, namespace: default}
spec:
  address: %[3]s
  labels: {app: %[1]s}
  serviceAccount: %[4]s
`, spec.service, port, spec.ip, spec.sa)); err != nil {
		t.Fatal(err)
	}
	d := s.waitFor(t, "a plaintext listener", func(st inbound.State) bool { return st.Mode == inbound.Plaintext })
	t.Logf("the inbound listener reached the server %v after the apply of its Service and WorkloadEntry returned", d.Round(time.Millisecond))
	return s
}

// applyStrict applies PeerAuthentication STRICT to the namespace and
// waits until s applies it; it returns how long that took.
// strictMesh is PeerAuthentication STRICT for the namespace.
const strictMesh = `
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: default}
spec: {mtls: {mode: STRICT}}
`

func applyStrict(ctx context.Context, t *testing.T, m *localmesh.Mesh, s *guardedServer) time.Duration {
	t.Helper()
	if err := m.Apply(ctx, strictMesh); err != nil {
		t.Fatal(err)
	}
	return s.waitFor(t, "mutual TLS", func(st inbound.State) bool { return st.Mode == inbound.MutualTLS })
}

// waitFor waits (bounded) until the guard applies a state that ok accepts,
// and returns how long that took.
func (s *guardedServer) waitFor(t *testing.T, what string, ok func(inbound.State) bool) time.Duration {
	t.Helper()
	start := time.Now()
	deadline := time.After(30 * time.Second)
	for {
		changed := s.w.Changed()
		if st := s.w.State(); ok(st) {
			return time.Since(start)
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("the server did not apply %s within 30s; state: %+v", what, s.w.State())
		}
	}
}

// client is a workload that calls the guarded server: its certificate
// from istiod, and dialers for Shoal's Triple client and grpc-go.
type client struct {
	w   workload
	src *identity.Source
}

func newClient(ctx context.Context, t *testing.T, m *localmesh.Mesh, sa string) *client {
	t.Helper()
	w := newWorkload(ctx, t, m, sa)
	src, err := w.source(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = src.Close() })
	return &client{w: w, src: src}
}

// triple dials the server with mutual TLS, verifying its SPIFFE ID.
func (c *client) triple(t *testing.T, s *guardedServer) greettriple.GreetServiceClient {
	t.Helper()
	return greettriple.NewGreetServiceClient(c.dial(t, s))
}

func (c *client) dial(t *testing.T, s *guardedServer) *triple.ClientConn {
	t.Helper()
	cc, err := triple.Dial(s.addr, triple.WithTLS(c.src.ClientTLSConfig(identity.AllowIDs(s.id))))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	return cc
}

// grpcGo dials the server with grpc-go, over mutual TLS with the client's
// certificate when tlsCfg is set, else in plaintext.
func grpcGo(t *testing.T, addr string, tlsCfg *tls.Config) greet.GreetServiceClient {
	t.Helper()
	creds := insecure.NewCredentials()
	if tlsCfg != nil {
		creds = credentials.NewTLS(tlsCfg)
	}
	cc, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	return greet.NewGreetServiceClient(cc)
}

func callCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func greetTriple(t *testing.T, c greettriple.GreetServiceClient) error {
	_, err := c.Greet(callCtx(t), &greet.GreetRequest{Name: "x"})
	return err
}

// streamTriple makes a GreetServerStream call and reads it to the end. It
// uses the stream API rather than the generated method: a server that
// refuses the call before reading the request may end it while the request
// is being sent, and then SendMsg reports io.EOF (as in grpc-go) and only
// RecvMsg has the status.
func streamTriple(t *testing.T, inv triple.Invoker) error {
	st, err := inv.NewStream(callCtx(t), &greettriple.GreetService_ServiceDesc.Streams[0], greettriple.GreetServiceGreetServerStreamProcedure)
	if err != nil {
		return err
	}
	if err := st.SendMsg(&greet.GreetRequest{Name: "x"}); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	if err := st.CloseSend(); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	for {
		if err := st.RecvMsg(new(greet.GreetResponse)); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

// TestServerSecurity runs a real kube-apiserver and istiod once for the
// server side of Istio security: a Shoal provider follows its inbound
// listener (PeerAuthentication, AuthorizationPolicy) with no istio-agent.
func TestServerSecurity(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real kube-apiserver and istiod; run without -short (make test)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	m, err := localmesh.Start(ctx, localmesh.WithoutControllerManager(), localmesh.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Stop()
	s := startGuardedServer(ctx, t, m)
	a, b := newClient(ctx, t, m, "consumer-a"), newClient(ctx, t, m, "consumer-b")

	// Before any PeerAuthentication: plaintext, from grpc-go. This
	// connection stays open into STRICT.
	plainOld := grpcGo(t, s.addr, nil)
	if _, err := plainOld.Greet(callCtx(t), &greet.GreetRequest{Name: "x"}); err != nil {
		t.Fatalf("plaintext call with no PeerAuthentication: %v", err)
	}

	t.Run("StrictRefusesPlaintext", func(t *testing.T) { testStrict(ctx, t, m, s, a, plainOld) })
	t.Run("BadClientCertificates", func(t *testing.T) { testBadCertificates(ctx, t, m, s, a) })
	t.Run("AllowOnlyServiceAccountA", func(t *testing.T) { testAllowOnlyA(ctx, t, m, s, a, b) })
	t.Run("DenyOneMethod", func(t *testing.T) { testDenyOneMethod(ctx, t, m, s, a) })
	t.Run("PolicyChangeLatency", func(t *testing.T) { testPolicyChangeLatency(ctx, t, m, s, a, b) })
	t.Run("GRPCGoXDSClientUnderStrict", func(t *testing.T) { testGRPCGoXDSClient(ctx, t, m, s, a) })
}

// testStrict: under PeerAuthentication STRICT, plaintext clients (grpc-go,
// Shoal's Triple client) are refused, and so are new calls on a plaintext
// connection opened before; grpc-go and Shoal clients with istiod-issued
// certificates succeed, and the server sees the client's SPIFFE ID.
func testStrict(ctx context.Context, t *testing.T, m *localmesh.Mesh, s *guardedServer, a *client, plainOld greet.GreetServiceClient) {
	d := applyStrict(ctx, t, m, s)
	t.Logf("PeerAuthentication STRICT applied by the server %v after kubectl apply returned", d.Round(time.Millisecond))

	_, err := grpcGo(t, s.addr, nil).Greet(callCtx(t), &greet.GreetRequest{Name: "x"})
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("a new plaintext grpc-go connection under STRICT: %v, want UNAVAILABLE (the TLS handshake fails)", err)
	}
	t.Logf("plaintext grpc-go client: %v", err)
	cc, err := triple.Dial(s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cc.Close() }()
	if err := greetTriple(t, greettriple.NewGreetServiceClient(cc)); triple.CodeOf(err) != triple.CodeUnavailable {
		t.Fatalf("a plaintext Triple client under STRICT: %v, want UNAVAILABLE", err)
	}
	_, err = plainOld.Greet(callCtx(t), &greet.GreetRequest{Name: "x"})
	if status.Code(err) != codes.Unauthenticated || !strings.Contains(err.Error(), "STRICT") {
		t.Fatalf("a call on a plaintext connection opened before STRICT: %v, want UNAUTHENTICATED naming STRICT", err)
	}

	if _, err := grpcGo(t, s.addr, a.src.ClientTLSConfig(identity.AllowIDs(s.id))).Greet(callCtx(t), &greet.GreetRequest{Name: "x"}); err != nil {
		t.Fatalf("grpc-go with consumer-a's istiod certificate: %v", err)
	}
	if err := greetTriple(t, a.triple(t, s)); err != nil {
		t.Fatalf("Shoal's Triple client with consumer-a's istiod certificate: %v", err)
	}
	// A client expecting another server identity refuses this server.
	cc2, err := triple.Dial(s.addr, triple.WithTLS(a.src.ClientTLSConfig(identity.AllowIDs(a.w.id()))))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cc2.Close() }()
	if err := greetTriple(t, greettriple.NewGreetServiceClient(cc2)); err == nil || !strings.Contains(err.Error(), "not among the allowed identities") {
		t.Fatalf("a client expecting consumer-a's identity on the server: %v, want a refusal naming the identities", err)
	}
}

// testBadCertificates: a client certificate chained to istiod's CA but
// expired, and one with the right SPIFFE ID from a foreign CA, are refused
// at the handshake, over TLS 1.3 and 1.2; the server's log says why.
func testBadCertificates(ctx context.Context, t *testing.T, m *localmesh.Mesh, s *guardedServer, a *client) {
	caCert, caKey := istiodCA(ctx, t, m)
	foreignCert, foreignKey := selfSignedCA(t)
	tests := []struct {
		name      string
		signer    *x509.Certificate
		key       crypto.Signer
		notAfter  time.Time
		serverLog string
	}{
		{"ExpiredFromIstiodCA", caCert, caKey, time.Now().Add(-time.Minute), "certificate has expired"},
		{"ForeignCA", foreignCert, foreignKey, time.Now().Add(time.Hour), "certificate signed by unknown authority"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cert := leafFor(t, a.w.id(), tt.signer, tt.key, tt.notAfter)
			// Under TLS 1.3 the client's handshake completes before the
			// server checks its certificate, so the client may see the
			// server's alert or just a closed connection; under TLS 1.2
			// the alert always ends the client's handshake.
			for _, maxVersion := range []uint16{tls.VersionTLS13, tls.VersionTLS12} {
				cfg := a.src.ClientTLSConfig(identity.AllowIDs(s.id))
				cfg.MaxVersion = maxVersion
				cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
				before := len(s.logs.String())
				_, err := grpcGo(t, s.addr, cfg).Greet(callCtx(t), &greet.GreetRequest{Name: "x"})
				if status.Code(err) != codes.Unavailable || (maxVersion == tls.VersionTLS12 && !strings.Contains(err.Error(), "bad certificate")) {
					t.Fatalf("call with the %s certificate (TLS max %x): %v, want UNAVAILABLE (with the server's bad certificate alert under TLS 1.2)", tt.name, maxVersion, err)
				}
				t.Logf("client (TLS max %x) sees: %v", maxVersion, err)
				deadline := time.Now().Add(10 * time.Second)
				for time.Now().Before(deadline) && !strings.Contains(s.logs.String()[before:], tt.serverLog) {
					time.Sleep(10 * time.Millisecond)
				}
				logs := s.logs.String()[before:]
				if !strings.Contains(logs, "refused a client certificate") || !strings.Contains(logs, tt.serverLog) {
					t.Fatalf("the server log does not say %q:\n%s", tt.serverLog, logs)
				}
				for _, line := range strings.Split(logs, "\n") {
					if strings.Contains(line, "refused a client certificate") {
						t.Logf("server log: %s", line)
						break
					}
				}
			}
		})
	}
}

// testAllowOnlyA: an AuthorizationPolicy allowing only service account
// consumer-a: a's calls succeed, b's get PERMISSION_DENIED naming the
// policy; grpc-go and Triple clients alike.
func testAllowOnlyA(ctx context.Context, t *testing.T, m *localmesh.Mesh, s *guardedServer, a, b *client) {
	applyAllow(ctx, t, m, s, "cluster.local/ns/default/sa/consumer-a")
	if err := greetTriple(t, a.triple(t, s)); err != nil {
		t.Fatalf("consumer-a under ALLOW a: %v", err)
	}
	err := greetTriple(t, b.triple(t, s))
	if triple.CodeOf(err) != triple.CodePermissionDenied || !strings.Contains(err.Error(), "default-allow-a-0") {
		t.Fatalf("consumer-b under ALLOW a: %v, want PERMISSION_DENIED naming default-allow-a-0", err)
	}
	t.Logf("consumer-b: %v", err)
	_, err = grpcGo(t, s.addr, b.src.ClientTLSConfig(identity.AllowIDs(s.id))).Greet(callCtx(t), &greet.GreetRequest{Name: "x"})
	if status.Code(err) != codes.PermissionDenied {
		t.Fatalf("grpc-go as consumer-b under ALLOW a: %v, want PERMISSION_DENIED", err)
	}
}

// applyAllow applies AuthorizationPolicy allow-a for the principals and
// waits until the server holds it.
func applyAllow(ctx context.Context, t *testing.T, m *localmesh.Mesh, s *guardedServer, principals ...string) time.Duration {
	t.Helper()
	applyAllowPolicy(ctx, t, m, principals...)
	want := "spiffe://" + principals[len(principals)-1]
	return s.waitFor(t, "the ALLOW policy for "+want, func(st inbound.State) bool {
		return st.Listener != nil && hasPrincipal(st, want)
	})
}

// applyAllowPolicy applies AuthorizationPolicy allow-a: ALLOW calls to the
// guarded server from the principals only.
func applyAllowPolicy(ctx context.Context, t *testing.T, m *localmesh.Mesh, principals ...string) {
	t.Helper()
	quoted := make([]string, len(principals))
	for i, p := range principals {
		quoted[i] = strconv.Quote(p)
	}
	if err := m.Apply(ctx, fmt.Sprintf(`
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-a, namespace: default}
spec:
  selector: {matchLabels: {app: %s}}
  action: ALLOW
  rules: [{from: [{source: {principals: [%s]}}]}]
`, guardedService, strings.Join(quoted, ", "))); err != nil {
		t.Fatal(err)
	}
}

// hasPrincipal reports whether an ALLOW policy of st names principal.
func hasPrincipal(st inbound.State, principal string) bool {
	for _, f := range st.Listener.FilterChain.RBAC {
		for _, p := range f.Policies {
			if strings.Contains(fmt.Sprintf("%+v", p.Principals), principal) {
				return true
			}
		}
	}
	return false
}

// testDenyOneMethod: a DENY policy on GreetServerStream blocks that method
// only; Greet keeps working for consumer-a.
func testDenyOneMethod(ctx context.Context, t *testing.T, m *localmesh.Mesh, s *guardedServer, a *client) {
	if err := m.Apply(ctx, `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-stream, namespace: default}
spec:
  action: DENY
  rules: [{to: [{operation: {paths: ["/greet.GreetService/GreetServerStream"]}}]}]
`); err != nil {
		t.Fatal(err)
	}
	s.waitFor(t, "the DENY policy", func(st inbound.State) bool {
		return st.Listener != nil && slices.ContainsFunc(st.Listener.FilterChain.RBAC, func(r xdsresource.RBAC) bool {
			return r.Action.String() == "DENY"
		})
	})
	cc := a.dial(t, s)
	if err := greetTriple(t, greettriple.NewGreetServiceClient(cc)); err != nil {
		t.Fatalf("Greet under a DENY of GreetServerStream: %v", err)
	}
	err := streamTriple(t, cc)
	if triple.CodeOf(err) != triple.CodePermissionDenied || !strings.Contains(err.Error(), "default-deny-stream-0") {
		t.Fatalf("GreetServerStream under its DENY: %v, want PERMISSION_DENIED naming default-deny-stream-0", err)
	}
	t.Logf("GreetServerStream: %v", err)
	if err := m.Delete(ctx, `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-stream, namespace: default}
`); err != nil {
		t.Fatal(err)
	}
	s.waitFor(t, "no DENY policy", func(st inbound.State) bool {
		return st.Listener != nil && !slices.ContainsFunc(st.Listener.FilterChain.RBAC, func(r xdsresource.RBAC) bool {
			return r.Action.String() == "DENY"
		})
	})
	if err := streamTriple(t, cc); err != nil {
		t.Fatalf("GreetServerStream after its DENY was deleted: %v", err)
	}
}

// testPolicyChangeLatency: consumer-a calls without pause from 4
// goroutines while the ALLOW policy is changed 5 times to admit consumer-b
// and 5 times to shut it out again. Each time, the figure is from the
// moment `kubectl apply` returned to b's first call that shows the change
// (admitted, or refused). Asserted: both directions take effect, and none
// of a's calls fails; the times are reported.
func testPolicyChangeLatency(ctx context.Context, t *testing.T, m *localmesh.Mesh, s *guardedServer, a, b *client) {
	const aPrincipal, bPrincipal = "cluster.local/ns/default/sa/consumer-a", "cluster.local/ns/default/sa/consumer-b"
	applyAllow(ctx, t, m, s, aPrincipal)
	ac, bc := a.triple(t, s), b.triple(t, s)
	var calls, failed atomic.Int64
	var firstErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				calls.Add(1)
				if err := greetTriple(t, ac); err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
				}
			}
		}()
	}
	var admit, refuse []time.Duration
	for range 5 {
		admit = append(admit, changeAndMeasure(ctx, t, m, s, bc, true, aPrincipal, bPrincipal))
		refuse = append(refuse, changeAndMeasure(ctx, t, m, s, bc, false, aPrincipal))
	}
	close(stop)
	wg.Wait()
	t.Logf("apply -> consumer-b admitted: %v (median %v)", admit, median(admit))
	t.Logf("apply -> consumer-b refused: %v (median %v)", refuse, median(refuse))
	t.Logf("consumer-a: %d calls during the 10 changes, %d failed", calls.Load(), failed.Load())
	if n := failed.Load(); n != 0 {
		t.Fatalf("%d of consumer-a's %d calls failed while the policy changed; first: %v", n, calls.Load(), firstErr.Load())
	}
}

// changeAndMeasure applies the ALLOW policy for principals and polls
// consumer-b until its call shows the change (admitted when admit, else
// PERMISSION_DENIED); it returns the time from the apply's return.
func changeAndMeasure(ctx context.Context, t *testing.T, m *localmesh.Mesh, s *guardedServer, bc greettriple.GreetServiceClient, admit bool, principals ...string) time.Duration {
	t.Helper()
	applyAllowPolicy(ctx, t, m, principals...)
	start := time.Now()
	deadline := start.Add(30 * time.Second)
	for time.Now().Before(deadline) {
		err := greetTriple(t, bc)
		if admit && err == nil {
			return time.Since(start)
		}
		if !admit && triple.CodeOf(err) == triple.CodePermissionDenied {
			return time.Since(start)
		}
		if err != nil && triple.CodeOf(err) != triple.CodePermissionDenied {
			t.Fatalf("consumer-b's call failed with something other than the policy: %v", err)
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Fatalf("the policy change (admit consumer-b: %v) did not reach consumer-b's calls within 30s; server state %+v", admit, s.w.State())
	return 0
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// istiodCA reads the CA certificate and key istiod signs with (Secret
// istio-system/istio-ca-secret), to make an expired workload certificate
// the mesh would otherwise trust.
func istiodCA(ctx context.Context, t *testing.T, m *localmesh.Mesh) (*x509.Certificate, crypto.Signer) {
	t.Helper()
	sec, err := m.Kube().CoreV1().Secrets("istio-system").Get(ctx, "istio-ca-secret", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cb, _ := pem.Decode(sec.Data["ca-cert.pem"])
	kb, _ := pem.Decode(sec.Data["ca-key.pem"])
	if cb == nil || kb == nil {
		t.Fatal("istio-ca-secret holds no PEM ca-cert.pem / ca-key.pem")
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	key, err := parseKey(kb.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

func parseKey(der []byte) (crypto.Signer, error) {
	if k, err := x509.ParsePKCS1PrivateKey(der); err == nil {
		return k, nil
	}
	if k, err := x509.ParseECPrivateKey(der); err == nil {
		return k, nil
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("the CA key is neither PKCS#1, SEC 1 nor PKCS#8: %w", err)
	}
	signer, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("the CA key %T cannot sign", k)
	}
	return signer, nil
}

// selfSignedCA is a CA the mesh does not trust.
func selfSignedCA(t *testing.T) (*x509.Certificate, crypto.Signer) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{Organization: []string{"foreign.example"}},
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
	return cert, key
}

// leafFor issues a workload certificate for id (URI SAN only, as istiod's)
// signed by ca, valid until notAfter.
func leafFor(t *testing.T, id identity.ID, ca *x509.Certificate, caKey crypto.Signer, notAfter time.Time) *tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(id.String())
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), URIs: []*url.URL{u},
		NotBefore: notAfter.Add(-time.Hour), NotAfter: notAfter,
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Certificate{Certificate: [][]byte{der, ca.Raw}, PrivateKey: key}
}

func marshalKey(k crypto.PrivateKey) ([]byte, error) { return x509.MarshalPKCS8PrivateKey(k) }
