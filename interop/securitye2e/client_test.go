package securitye2e_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoalmesh/shoal/localmesh"
	"github.com/shoalmesh/shoal/proto/greet"
	"github.com/shoalmesh/shoal/proto/greet/greettriple"
	"github.com/shoalmesh/shoal/registry-istio/identity"
	"github.com/shoalmesh/shoal/registry-istio/xdsclient"
	"github.com/shoalmesh/shoal/registry-istio/xdsmesh"
	routermesh "github.com/shoalmesh/shoal/router-mesh"
	"github.com/shoalmesh/shoal/sdk/consumer"
	"github.com/shoalmesh/shoal/sdk/mesh"
	"github.com/shoalmesh/shoal/sdk/registry"
	"github.com/shoalmesh/shoal/sdk/router"
	"github.com/shoalmesh/shoal/sdk/tri"
	"github.com/shoalmesh/shoal/triple"
)

// Hosts of the client-side mTLS test: the greeter, and an impostor whose
// ServiceEntry names the greeter's service account while its server
// presents another identity.
const (
	mtlsHost     = "mtls-greeter.default.svc.cluster.local"
	impostorHost = "mtls-impostor.default.svc.cluster.local"
	mtlsPort     = 20000
)

func xdsTarget(host string) string { return fmt.Sprintf("xds:///%s:%d", host, mtlsPort) }

// TestClientMTLS runs the client side of Istio mTLS against the real
// istiod: a Shoal consumer whose workload certificate comes from istiod
// calls a Shoal provider (Triple over TLS, client certificates verified
// with identity.ServerTLSConfig) over mutual TLS once a DestinationRule
// says ISTIO_MUTUAL, verifying the provider's SPIFFE ID against the
// service accounts istiod lists for the destination; a provider presenting
// an identity not in that list is refused; with no DestinationRule the
// consumer calls in plaintext. The providers accept both plaintext and TLS
// on one port (as a PERMISSIVE workload), so each answer says which one it
// came over.
func TestClientMTLS(t *testing.T) {
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

	provW, consW, impW := newWorkload(ctx, t, m, "mtls-provider"), newWorkload(ctx, t, m, "mtls-consumer"), newWorkload(ctx, t, m, "mtls-impostor")
	provSrc, consSrc, impSrc := mustSource(ctx, t, m, provW), mustSource(ctx, t, m, consW), mustSource(ctx, t, m, impW)
	greeter := startPermissive(t, "greeter", provSrc)
	impostor := startPermissive(t, "impostor", impSrc)
	// Both ServiceEntries name the provider's service account: istiod
	// lists it as the only SAN of both clusters under ISTIO_MUTUAL.
	if err := m.Apply(ctx, serviceEntry("mtls-greeter", mtlsHost, greeter.port, provW.sa)+"---\n"+serviceEntry("mtls-impostor", impostorHost, impostor.port, provW.sa)); err != nil {
		t.Fatal(err)
	}

	// The consumer's xDS client talks to istiod's TLS port with its token.
	xc, err := xdsclient.New(xdsConfig(m, consW), xdsclient.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = xc.Close() }()
	disc := xdsmesh.NewDiscovery(xc, xdsmesh.WithLogger(quiet))
	transport := tri.NewTransport().WithClusterTLS(consSrc.ClusterTLS)
	ref := newMeshRef(t, disc, transport, mtlsHost)
	defer func() { _ = ref.Close() }()
	client := greettriple.NewGreetServiceClient(tri.NewClient(ref))

	t.Run("PlaintextWithoutDestinationRule", func(t *testing.T) {
		if got := greetOnce(ctx, t, client); got != "greeter plaintext" {
			t.Fatalf("served by %q, want the greeter over plaintext", got)
		}
		if n := greeter.mtlsCalls.Load(); n != 0 {
			t.Fatalf("%d calls over TLS with no DestinationRule", n)
		}
	})

	t.Run("IstioMutual", func(t *testing.T) {
		if err := m.Apply(ctx, istioMutual("mtls-greeter", mtlsHost)); err != nil {
			t.Fatal(err)
		}
		tls := waitForTLS(ctx, t, disc, mtlsHost, (*mesh.TLS).Secure)
		if tls.Mode != mesh.TLSIstioMutual || !slices.Equal(tls.PeerIDs, []string{provW.id().String()}) {
			t.Fatalf("cluster TLS %+v, want istio_mutual with [%s] (the ServiceEntry's service account)", tls, provW.id())
		}
		// The reference follows the same client: calls switch to mTLS with
		// no failed call on the way.
		waitForServedBy(ctx, t, client, "greeter mtls")
		if got := greeter.clientID(); got != consW.id() {
			t.Fatalf("the provider verified client %v, want %v", got, consW.id())
		}
	})

	t.Run("WrongServerIdentityRefused", func(t *testing.T) {
		if err := m.Apply(ctx, istioMutual("mtls-impostor", impostorHost)); err != nil {
			t.Fatal(err)
		}
		waitForTLS(ctx, t, disc, impostorHost, (*mesh.TLS).Secure)
		// The cluster already carries TLS in the client's cache: the
		// reference's first snapshot has it.
		imp := newMeshRef(t, disc, transport, impostorHost)
		defer func() { _ = imp.Close() }()
		_, err := greettriple.NewGreetServiceClient(tri.NewClient(imp)).Greet(ctx, &greet.GreetRequest{Name: "x"})
		want := fmt.Sprintf("the server presented %s, which is not among the identities istiod lists for this cluster [%s]", impW.id(), provW.id())
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("call to the impostor: %v; want an error saying %q", err, want)
		}
		if code := triple.CodeOf(err); code != triple.CodeUnavailable {
			t.Errorf("code %v, want Unavailable", code)
		}
		if n := impostor.mtlsCalls.Load() + impostor.plainCalls.Load(); n != 0 {
			t.Fatalf("the impostor served %d calls", n)
		}
		t.Logf("refused: %v", err)
	})

	t.Run("GRPCGoXDSServerUnderStrict", func(t *testing.T) { testGRPCGoXDSServer(ctx, t, m, disc, transport, consW) })

	t.Run("BackToPlaintext", func(t *testing.T) {
		if err := m.Delete(ctx, istioMutual("mtls-greeter", mtlsHost)); err != nil {
			t.Fatal(err)
		}
		waitForTLS(ctx, t, disc, mtlsHost, func(t *mesh.TLS) bool { return !t.Secure() })
		waitForServedBy(ctx, t, client, "greeter plaintext")
	})
}

func mustSource(ctx context.Context, t *testing.T, m *localmesh.Mesh, w workload) *identity.Source {
	t.Helper()
	s, err := w.source(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// serviceEntry is a mesh-internal host served at 127.0.0.1:port by a
// workload of service account sa, labelled app=<name> (istiod takes a
// proxyless server's labels, which policies select, from its endpoint).
func serviceEntry(name, host string, port int, sa string) string {
	return fmt.Sprintf(`
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: %s, namespace: default}
spec:
  hosts: [%s]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: %d, name: grpc, protocol: GRPC, targetPort: %d}]
  endpoints: [{address: 127.0.0.1, serviceAccount: %s, labels: {app: %s}}]
`, name, host, mtlsPort, port, sa, name)
}

func istioMutual(name, host string) string {
	return fmt.Sprintf(`
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: %s, namespace: default}
spec:
  host: %s
  trafficPolicy: {tls: {mode: ISTIO_MUTUAL}}
`, name, host)
}

// newMeshRef is a consumer of host through d with the Istio routing engine.
func newMeshRef(t *testing.T, d registry.Discovery, tr consumer.Transport, host string) *consumer.Reference {
	t.Helper()
	return newTargetRef(t, d, tr, xdsTarget(host))
}

// newTargetRef is a consumer of an xds:/// target through d with the
// Istio routing engine.
func newTargetRef(t *testing.T, d registry.Discovery, tr consumer.Transport, target string) *consumer.Reference {
	t.Helper()
	engine := router.BuildEngine(routermesh.Builder(routermesh.WithLogger(quiet)), router.EngineOptions{Service: target, Logger: quiet})
	ref, err := consumer.New(registry.Key{Interface: target}, d, tr,
		consumer.WithEngine(engine), consumer.WithLogger(quiet), consumer.WithWaitForReady(), consumer.WithTimeout(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

// waitForTLS waits until d serves host's default cluster with a TLS for
// which ok holds, and returns it.
func waitForTLS(ctx context.Context, t *testing.T, d registry.Discovery, host string, ok func(*mesh.TLS) bool) *mesh.TLS {
	t.Helper()
	return waitForTargetTLS(ctx, t, d, xdsTarget(host), ok)
}

// waitForTargetTLS is waitForTLS for an xds:/// target.
func waitForTargetTLS(ctx context.Context, t *testing.T, d registry.Discovery, target string, ok func(*mesh.TLS) bool) *mesh.TLS {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	w, err := d.Watch(ctx, registry.Key{Interface: target})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = w.Close() }()
	for {
		s, err := w.Next(ctx)
		if err != nil {
			t.Fatalf("no snapshot of %s with the expected TLS: %v", target, err)
		}
		if c, found := s.Cluster(mesh.Destination{Service: target}); found && ok(c.Policy().TLS) {
			return c.Policy().TLS
		}
	}
}

func greetOnce(ctx context.Context, t *testing.T, c greettriple.GreetServiceClient) string {
	t.Helper()
	resp, err := c.Greet(ctx, &greet.GreetRequest{Name: "x"})
	if err != nil {
		t.Fatalf("call: %v", err)
	}
	return resp.GetServedBy()
}

// waitForServedBy calls until the answer comes from want, failing on any
// failed call; at most 1000 calls.
func waitForServedBy(ctx context.Context, t *testing.T, c greettriple.GreetServiceClient, want string) {
	t.Helper()
	var got string
	for i := range 1000 {
		if got = greetOnce(ctx, t, c); got == want {
			t.Logf("served by %q after %d calls", want, i+1)
			return
		}
	}
	t.Fatalf("still served by %q after 1000 calls, want %q", got, want)
}

// permissive is a Shoal provider that serves plaintext and mutual TLS
// (its istiod certificate, client certificates required and verified
// against the mesh root) on one port, telling them apart by the first
// byte, as a workload under PeerAuthentication PERMISSIVE does.
type permissive struct {
	port       int
	plainCalls atomic.Int64
	mtlsCalls  atomic.Int64
	lastClient atomic.Pointer[identity.ID]
}

func (p *permissive) clientID() identity.ID {
	if id := p.lastClient.Load(); id != nil {
		return *id
	}
	return identity.ID{}
}

type greeter struct {
	greettriple.UnimplementedGreetServiceHandler
	name  string
	calls *atomic.Int64
}

func (g greeter) Greet(context.Context, *greet.GreetRequest) (*greet.GreetResponse, error) {
	g.calls.Add(1)
	return &greet.GreetResponse{ServedBy: g.name}, nil
}

func startPermissive(t *testing.T, name string, src *identity.Source) *permissive {
	t.Helper()
	p := &permissive{}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.port = lis.Addr().(*net.TCPAddr).Port
	plainL, tlsL := newChanListener(lis.Addr()), newChanListener(lis.Addr())
	plain := triple.NewServer()
	secure := triple.NewServer(triple.WithTLS(src.ServerTLSConfig(func(id identity.ID) error {
		p.lastClient.Store(&id)
		return nil
	})))
	for _, s := range []struct {
		srv   *triple.Server
		how   string
		calls *atomic.Int64
	}{{plain, "plaintext", &p.plainCalls}, {secure, "mtls", &p.mtlsCalls}} {
		if err := greettriple.RegisterGreetServiceHandler(s.srv, greeter{name: name + " " + s.how, calls: s.calls}); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	wg.Add(3)
	go func() { defer wg.Done(); _ = plain.Serve(plainL) }()
	go func() { defer wg.Done(); _ = secure.Serve(tlsL) }()
	go func() { defer wg.Done(); sniff(lis, plainL, tlsL) }()
	t.Cleanup(func() {
		_ = lis.Close()
		_ = plain.Close()
		_ = secure.Close()
		wg.Wait()
	})
	return p
}

// sniff hands each connection of lis to tlsL when it starts with a TLS
// handshake record (0x16), else to plainL, until lis closes.
func sniff(lis net.Listener, plainL, tlsL *chanListener) {
	for {
		nc, err := lis.Accept()
		if err != nil {
			return
		}
		go func() {
			br := bufio.NewReader(nc)
			_ = nc.SetReadDeadline(time.Now().Add(10 * time.Second))
			first, err := br.Peek(1)
			_ = nc.SetReadDeadline(time.Time{})
			if err != nil {
				_ = nc.Close()
				return
			}
			to := plainL
			if first[0] == 0x16 {
				to = tlsL
			}
			if !to.deliver(&peekedConn{Conn: nc, r: br}) {
				_ = nc.Close()
			}
		}()
	}
}

type peekedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *peekedConn) Read(b []byte) (int, error) { return c.r.Read(b) }

// chanListener is a net.Listener fed by sniff.
type chanListener struct {
	addr  net.Addr
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newChanListener(addr net.Addr) *chanListener {
	return &chanListener{addr: addr, conns: make(chan net.Conn), done: make(chan struct{})}
}

func (l *chanListener) deliver(c net.Conn) bool {
	select {
	case l.conns <- c:
		return true
	case <-l.done:
		return false
	}
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *chanListener) Addr() net.Addr { return l.addr }
