package securitye2e_test

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoalmesh/shoal/localmesh"
	"github.com/shoalmesh/shoal/proto/greet/greettriple"
	registryistio "github.com/shoalmesh/shoal/registry-istio"
	"github.com/shoalmesh/shoal/registry-istio/xdsclient"
	"github.com/shoalmesh/shoal/registry-istio/xdsmesh"
	routermesh "github.com/shoalmesh/shoal/router-mesh"
	"github.com/shoalmesh/shoal/sdk/app"
	"github.com/shoalmesh/shoal/sdk/config"
	"github.com/shoalmesh/shoal/sdk/mesh"
	"github.com/shoalmesh/shoal/sdk/registry"
	"github.com/shoalmesh/shoal/sdk/router"
	"github.com/shoalmesh/shoal/sdk/tri"
	"github.com/shoalmesh/shoal/triple"
)

// TestConsumerSecurityFromConfig: a consumer-only sdk app whose only
// security setting is the istio registry's params.identity: istiod (its
// bootstrap from the environment, as in a pod) gets its certificate from
// the real istiod and calls a guarded provider under PeerAuthentication
// STRICT through DestinationRule ISTIO_MUTUAL; the provider sees the
// consumer's SPIFFE ID.
func TestConsumerSecurityFromConfig(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real kube-apiserver and istiod; run without -short (make test)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	m, err := localmesh.Start(ctx, localmesh.WithoutControllerManager(), localmesh.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Stop()
	var lastClient atomic.Pointer[string]
	s := startGuarded(ctx, t, m, guardedSpec{
		service: "cfg-greeter", sa: "cfg-provider", ip: "127.0.0.43",
		serverOpts: []triple.ServerOption{triple.WithUnaryInterceptors(func(ctx context.Context, req any, _ *triple.UnaryServerInfo, h triple.UnaryHandler) (any, error) {
			if p, ok := triple.PeerFromContext(ctx); ok && p.TLS != nil && len(p.TLS.PeerCertificates) > 0 && len(p.TLS.PeerCertificates[0].URIs) == 1 {
				id := p.TLS.PeerCertificates[0].URIs[0].String()
				lastClient.Store(&id)
			}
			return h(ctx, req)
		})},
	})
	applyStrict(ctx, t, m, s)
	host := "cfg-greeter.default.svc.cluster.local"
	if err := m.Apply(ctx, istioMutual("cfg-greeter", host)); err != nil {
		t.Fatal(err)
	}

	// The consumer's pod: its token and root mounted, istiod's TLS port in
	// the environment.
	w := newWorkload(ctx, t, m, "cfg-consumer")
	for k, v := range map[string]string{
		"GRPC_XDS_BOOTSTRAP": "", "GRPC_XDS_BOOTSTRAP_CONFIG": "",
		"SHOAL_XDS_ADDRESS": m.IstiodTLSAddr(0), "SHOAL_XDS_TLS": "true", "SHOAL_XDS_ROOT_CERT": w.rootFile,
		"SHOAL_XDS_SERVER_NAME": localmesh.IstiodServerName, "SHOAL_XDS_TOKEN": w.tokenFile,
		"POD_NAME": "cfg-consumer-0", "POD_NAMESPACE": ns, "INSTANCE_IP": "127.0.0.1", "SERVICE_ACCOUNT": w.sa,
	} {
		t.Setenv(k, v)
	}
	_, port, _ := net.SplitHostPort(s.addr)
	target := xdsmesh.TargetScheme + host + ":" + port
	// Wait until istiod sends the cluster with ISTIO_MUTUAL, so that the
	// app's first call is already over mutual TLS.
	xc, err := xdsclient.New(xdsConfig(m, w), xdsclient.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	waitForTargetTLS(ctx, t, xdsmesh.NewDiscovery(xc, xdsmesh.WithLogger(quiet)), target, (*mesh.TLS).Secure)
	_ = xc.Close()
	cfg, err := config.Load(config.WithoutFile(), config.WithEnv(func(string) (string, bool) { return "", false }),
		config.WithApplicationName("cfg-consumer"),
		config.WithRegistry(config.Registry{Name: "mesh", Kind: registryistio.Name, Params: map[string]string{"identity": "istiod", "publish": "false"}}),
		config.WithReference(config.Reference{Name: "greet", Interface: target, Router: routermesh.EngineName, WaitForReady: true}))
	if err != nil {
		t.Fatal(err)
	}
	a, err := app.New(cfg, app.WithRegistryBuilders(registry.NewBuilders(registryistio.Builder())),
		app.WithEngines(router.NewEngines(routermesh.Builder(routermesh.WithLogger(quiet)))),
		app.WithTransport(tri.NewTransport()), app.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() {
		sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer scancel()
		_ = a.Stop(sctx)
	}()
	r, _ := a.Registry("mesh")
	if got := r.(*registryistio.Registry).Identity().ID(); got != w.id() {
		t.Fatalf("the app's identity is %v, want %v (its service account's)", got, w.id())
	}
	ref, err := a.Reference("greet")
	if err != nil {
		t.Fatal(err)
	}
	if err := greetTriple(t, greettriple.NewGreetServiceClient(tri.NewClient(ref))); err != nil {
		t.Fatalf("a call under STRICT through ISTIO_MUTUAL: %v", err)
	}
	if got := lastClient.Load(); got == nil || *got != w.id().String() {
		t.Fatalf("the provider saw client %v, want %v", got, w.id())
	}
}
