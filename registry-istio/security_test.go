package registryistio_test

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	rbacv3 "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	registryistio "github.com/shoalmesh/shoal/registry-istio"
	"github.com/shoalmesh/shoal/registry-istio/inbound"
	"github.com/shoalmesh/shoal/registry-istio/mapping"
	"github.com/shoalmesh/shoal/registry-istio/xdstest"
	"github.com/shoalmesh/shoal/sdk/app"
	"github.com/shoalmesh/shoal/sdk/config"
	"github.com/shoalmesh/shoal/sdk/consumer"
	"github.com/shoalmesh/shoal/sdk/filter"
	"github.com/shoalmesh/shoal/sdk/mesh"
	"github.com/shoalmesh/shoal/sdk/provider"
	"github.com/shoalmesh/shoal/sdk/registry"
	"github.com/shoalmesh/shoal/sdk/tri"
	"github.com/shoalmesh/shoal/triple"
)

const workloadID = "spiffe://cluster.local/ns/default/sa/greeter"

func noEnv(string) (string, bool) { return "", false }

// freePort is a loopback port nothing listens on right now.
func freePort(t *testing.T) uint32 {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.Close() }()
	return uint32(l.Addr().(*net.TCPAddr).Port)
}

// secureMesh serves, through xdstest, grpc.health.v1.Health at
// 127.0.0.1:port with istiod's shapes for PeerAuthentication STRICT (the
// inbound listener) and DestinationRule ISTIO_MUTUAL (the cluster), and
// points GRPC_XDS_BOOTSTRAP at an istio-agent bootstrap with certificate
// files for workloadID.
func secureMesh(t *testing.T, port uint32) (*xdstest.Server, xdstest.Resources) {
	t.Helper()
	srv := xdstest.NewServer(t)
	target, err := mapping.Scheme{}.Target(registry.Key{Interface: "grpc.health.v1.Health"})
	if err != nil {
		t.Fatal(err)
	}
	host, sp, _ := net.SplitHostPort(target)
	svcPort, _ := strconv.ParseUint(sp, 10, 32)
	res := xdstest.StrictService(host, uint32(svcPort), xdstest.Endpoint{IP: "127.0.0.1", Port: port}, workloadID)
	srv.Set(res)
	t.Setenv("SHOAL_XDS_ADDRESS", "")
	t.Setenv("GRPC_XDS_BOOTSTRAP", xdstest.AgentFiles(t, t.TempDir(), srv.Address(), "sidecar~127.0.0.1~greeter-0.default~default.svc.cluster.local", workloadID))
	return srv, res
}

// An app configured with the istio registry and params.identity agent
// serves under PeerAuthentication STRICT and calls its own service through
// an ISTIO_MUTUAL cluster, with no security code: the registry wraps the
// app's servers with its guard and gives the transport the workload's
// identity. A plaintext client is refused, and an AuthorizationPolicy
// DENY on the method refuses the call.
func TestSecureAppFromConfig(t *testing.T) {
	port := freePort(t)
	srv, res := secureMesh(t, port)
	cfg, err := config.Load(config.WithEnv(noEnv), config.WithYAML("shoal.yaml", []byte(`
application: {name: greeter}
registries: [{name: mesh, kind: istio, params: {identity: agent, publish: "false"}}]
protocols: [{name: tri, host: 127.0.0.1, port: `+strconv.Itoa(int(port))+`}]
services: [{interface: grpc.health.v1.Health}]
references: [{name: health, interface: grpc.health.v1.Health, timeout: 5s}]
`)))
	if err != nil {
		t.Fatal(err)
	}
	servers := tri.NewServers(nil, triple.WithLogger(quiet))
	a, err := app.New(cfg, app.WithLogger(quiet), app.WithRegistryBuilders(registry.NewBuilders(registryistio.Builder())),
		app.WithTransport(tri.NewTransport()), app.WithServers(servers.Factory()), app.WithServing(servers.SetServing),
		app.WithDrainDelay(10*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = a.Stop(ctx) }()

	r, _ := a.Registry("mesh")
	reg := r.(*registryistio.Registry)
	if got := reg.Identity().ID().String(); got != workloadID {
		t.Fatalf("identity %s, want %s", got, workloadID)
	}
	w := reg.Guard().Watcher(int(port))
	if w == nil {
		t.Fatal("the app's server is not guarded")
	}
	if st := w.State(); st.Mode != inbound.MutualTLS {
		t.Fatalf("guard state %+v, want mutual TLS", st)
	}
	ref, err := a.Reference("health")
	if err != nil {
		t.Fatal(err)
	}
	out := new(healthpb.HealthCheckResponse)
	if err := tri.NewClient(ref).Invoke(ctx, "/grpc.health.v1.Health/Check", &healthpb.HealthCheckRequest{}, out); err != nil || out.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("call through the ISTIO_MUTUAL cluster: %v, %v", out.GetStatus(), err)
	}

	cc, err := triple.Dial("127.0.0.1:" + strconv.Itoa(int(port)))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cc.Close() }()
	cctx, ccancel := context.WithTimeout(ctx, 5*time.Second)
	defer ccancel()
	err = cc.Invoke(cctx, "/grpc.health.v1.Health/Check", &healthpb.HealthCheckRequest{}, new(healthpb.HealthCheckResponse))
	if triple.CodeOf(err) != triple.CodeUnavailable {
		t.Fatalf("a plaintext client under STRICT: %v, want UNAVAILABLE", err)
	}

	// The guard's filter runs on the app's calls: DENY the method.
	changed := w.Changed()
	res.Listeners[len(res.Listeners)-1] = xdstest.InboundListener("127.0.0.1", port, true, xdstest.RBACFilter(rbacv3.RBAC_DENY,
		map[string]*rbacv3.Policy{"default-deny-check-0": xdstest.RBACPolicy([]*rbacv3.Permission{xdstest.PathExact("/grpc.health.v1.Health/Check")}, nil)}))
	srv.Set(res)
	select {
	case <-changed:
	case <-ctx.Done():
		t.Fatal("the guard did not apply the DENY policy")
	}
	err = tri.NewClient(ref).Invoke(ctx, "/grpc.health.v1.Health/Check", &healthpb.HealthCheckRequest{}, out)
	if triple.CodeOf(err) != triple.CodePermissionDenied || !strings.Contains(err.Error(), "default-deny-check-0") {
		t.Fatalf("a call the policy denies: %v, want PERMISSION_DENIED naming the policy", err)
	}

	// Other transports and servers than sdk/tri's are refused, saying so.
	if _, err := reg.SecureTransport(otherTransport{}); err == nil || !strings.Contains(err.Error(), "needs sdk/tri's Transport") {
		t.Errorf("SecureTransport of another transport: %v", err)
	}
	f, err := reg.SecureServers(func(config.Protocol, *filter.ServerChain) (provider.Server, error) { return otherServer{}, nil })
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f(config.Protocol{Name: "tri"}, nil); err == nil || !strings.Contains(err.Error(), "cannot be guarded; serve it with sdk/tri") {
		t.Errorf("SecureServers of another server: %v", err)
	}
}

type otherTransport struct{}

func (otherTransport) Dial(context.Context, *mesh.Endpoint) (consumer.Conn, error) {
	return nil, errors.New("not used")
}

type otherServer struct{}

func (otherServer) Listen(context.Context) (net.Addr, error) { return nil, errors.New("not used") }
func (otherServer) Shutdown(context.Context) error           { return nil }

// The builder's security params: bad values are refused by name; the
// identity's errors say which param and file.
func TestBuilderSecurityParams(t *testing.T) {
	t.Setenv("SHOAL_XDS_ADDRESS", "127.0.0.1:1")
	t.Setenv("GRPC_XDS_BOOTSTRAP", "")
	t.Setenv("POD_NAME", "greeter-0")
	t.Setenv("INSTANCE_IP", "127.0.0.2")
	root := filepath.Join(t.TempDir(), "root-cert.pem")
	xdstest.AgentFiles(t, filepath.Dir(root), "127.0.0.1:1", "sidecar~127.0.0.2~greeter-0.default~default.svc.cluster.local", workloadID)
	missing := filepath.Join(t.TempDir(), "istio-token")
	for _, tc := range []struct {
		name   string
		params map[string]string
		want   string
	}{
		{"unknown mode", map[string]string{"identity": "spire"}, `identity "spire" is not istiod, agent or off`},
		{"bad TTL", map[string]string{"identity": "istiod", "certTTL": "soon"}, `params.certTTL "soon" is not a duration`},
		{"negative TTL", map[string]string{"identity": "istiod", "certTTL": "-1h"}, "certTTL -1h0m0s is negative"},
		{"agent without a bootstrap provider", map[string]string{"identity": "agent"}, `params.identity agent: identity: the gRPC bootstrap has no certificate provider "default"`},
		{"istiod without a token", map[string]string{"identity": "istiod", "rootCertFile": root, "tokenFile": missing}, "params.identity istiod: identity: read the service-account token: open " + missing},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg, err := registryistio.Builder().Build(context.Background(), registry.Config{Name: "mesh", Params: mergeParams(tc.params), Logger: quiet})
			if err == nil {
				_ = reg.Close()
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Fatalf("the token file was created: %v", err)
	}

	// Off (the default) is today's registry: no identity, nothing wrapped.
	reg, err := registryistio.Builder().Build(context.Background(), registry.Config{Name: "mesh", Params: mergeParams(map[string]string{"identity": "off"}), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = reg.Close() }()
	r := reg.(*registryistio.Registry)
	tr := tri.NewTransport()
	if r.Identity() != nil || r.Guard() != nil {
		t.Fatal("identity off built an identity or a guard")
	}
	if got, err := r.SecureTransport(tr); err != nil || got != tr {
		t.Fatalf("SecureTransport with identity off: %v, %v; want the transport unchanged", got, err)
	}
}

// mergeParams adds publish: false (no Kubernetes) to params.
func mergeParams(params map[string]string) map[string]string {
	out := map[string]string{"publish": "false"}
	for k, v := range params {
		out[k] = v
	}
	return out
}
