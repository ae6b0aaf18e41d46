package registrye2e_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoalmesh/shoal/interop/internal/e2etest"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	_ "google.golang.org/grpc/xds" // the xds:/// resolver, as a grpc-go user would enable it
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/shoalmesh/shoal/localmesh"
	"github.com/shoalmesh/shoal/proto/greet"
	"github.com/shoalmesh/shoal/proto/greet/greettriple"
	registryistio "github.com/shoalmesh/shoal/registry-istio"
	"github.com/shoalmesh/shoal/registry-istio/bootstrap"
	"github.com/shoalmesh/shoal/registry-istio/mapping"
	"github.com/shoalmesh/shoal/registry-istio/xdsclient"
	routermesh "github.com/shoalmesh/shoal/router-mesh"
	"github.com/shoalmesh/shoal/sdk/consumer"
	"github.com/shoalmesh/shoal/sdk/registry"
	"github.com/shoalmesh/shoal/sdk/router"
	"github.com/shoalmesh/shoal/sdk/tri"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, e2etest.IgnoreControlPlane...)
}

const (
	ns   = "default"
	app  = "greeter"
	port = 20000
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

var key = registry.Key{Interface: greettriple.GreetServiceName}

// TestDiscovery runs interface-level discovery against two real istiod
// replicas: providers in containers published as Pods, the interface's
// ServiceEntry applied as the chart would, and consumers on the host that
// name only greet.GreetService.
func TestDiscovery(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real control plane with two istiods and containers; run without -short (make test)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	m, eng, image := startMesh(ctx, t, 2)
	manifest, err := mapping.Scheme{}.Manifest(mapping.Application{Name: app, Namespace: ns, Interfaces: []registry.Key{key}, TargetPort: port})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Apply(ctx, string(manifest)); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"greeter-a", "greeter-b"} {
		w, err := m.RunWorkload(ctx, eng, localmesh.WorkloadSpec{
			Name: name, Namespace: ns, Image: image,
			Labels:    map[string]string{"app": app, "version": "v1"},
			Env:       map[string]string{"VERSION": "v1", "PORT": fmt.Sprint(port)},
			ReadyPort: port,
		})
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = w.Stop(context.Background(), 5*time.Second) }()
	}

	t.Run("ByInterfaceNameOnEitherReplica", func(t *testing.T) {
		for i := range 2 {
			c := newConsumer(ctx, t, m.IstiodAddr(i), fmt.Sprintf("consumer-%d", i))
			start := time.Now()
			served := map[string]bool{}
			for range 20 {
				resp, err := c.client.Greet(ctx, &greet.GreetRequest{Name: "discovery"})
				if err != nil {
					t.Fatalf("istiod-%d: %v", i, err)
				}
				served[resp.GetServedBy()] = true
			}
			if len(served) != 2 {
				t.Errorf("istiod-%d: calls served by %v, want both providers", i, served)
			}
			t.Logf("istiod-%d: 20 calls by interface name in %v, served by %v", i, time.Since(start).Round(time.Millisecond), served)
		}
	})

	t.Run("ByProvidingApplication", func(t *testing.T) {
		// The application's Kubernetes Service, as any Kubernetes app has
		// one: port 50051 (registry-istio's default app port) to the
		// providers' 20000. The consumer names only the application.
		if err := m.Apply(ctx, fmt.Sprintf(`
apiVersion: v1
kind: Service
metadata: {name: %s, namespace: %s}
spec:
  selector: {app: %[1]s}
  ports: [{name: grpc-tri, port: 50051, targetPort: %[3]d, protocol: TCP}]
`, app, ns, port)); err != nil {
			t.Fatal(err)
		}
		byApp := registry.Key{Interface: greettriple.GreetServiceName, ProvidedBy: app}
		start := time.Now()
		c := newConsumerFor(ctx, t, m.IstiodAddr(1), "consumer-by-app", byApp)
		first := time.Since(start)
		const want = app + "." + ns + ".svc.cluster.local:50051"
		if got, err := c.reg.Target(byApp); err != nil || got != want {
			t.Fatalf("app-level target = %q, %v; want %s", got, err, want)
		}
		served := map[string]bool{}
		for range 20 {
			resp, err := c.client.Greet(ctx, &greet.GreetRequest{Name: "by-app"})
			if err != nil {
				t.Fatal(err)
			}
			served[resp.GetServedBy()] = true
		}
		if len(served) != 2 {
			t.Errorf("calls by application served by %v, want both providers", served)
		}
		// What istiod was asked about: the application's host, never the
		// interface's ServiceEntry host.
		seHost, err := mapping.Scheme{}.Host(key)
		if err != nil {
			t.Fatal(err)
		}
		var listeners []string
		for _, ts := range c.reg.Client().Status().Types {
			if ts.Type.String() == "LDS" {
				for _, r := range ts.Resources {
					listeners = append(listeners, r.Name)
				}
			}
		}
		if !slices.Contains(listeners, want) || slices.ContainsFunc(listeners, func(l string) bool { return strings.HasPrefix(l, seHost) }) {
			t.Errorf("LDS watched %v, want %s and not the interface host %s", listeners, want, seHost)
		}
		t.Logf("providedBy %s -> %s: first call after %v, 20 calls served by %v", app, want, first.Round(time.Millisecond), served)
	})

	t.Run("IstiodDownTenSecondsUnderLoad", func(t *testing.T) {
		c := newConsumer(ctx, t, m.IstiodAddr(0), "consumer-outage")
		if _, err := c.client.Greet(ctx, &greet.GreetRequest{Name: "warm"}); err != nil {
			t.Fatal(err)
		}
		var calls, failed atomic.Int64
		var firstErr atomic.Value
		lctx, stop := context.WithCancel(ctx)
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				for i := 0; i < 1_000_000 && lctx.Err() == nil; i++ {
					if _, err := c.client.Greet(lctx, &greet.GreetRequest{Name: "load"}); err != nil && lctx.Err() == nil {
						failed.Add(1)
						firstErr.CompareAndSwap(nil, err.Error())
					}
					calls.Add(1)
					time.Sleep(5 * time.Millisecond)
				}
			})
		}
		time.Sleep(time.Second)
		if err := m.StopIstiod(0); err != nil {
			t.Fatal(err)
		}
		down := time.Now()
		time.Sleep(10 * time.Second)
		duringOutage := calls.Load()
		if err := m.StartIstiod(ctx, 0); err != nil {
			t.Fatal(err)
		}
		// The client reconnects and resumes its subscriptions.
		deadline := time.Now().Add(30 * time.Second)
		for c.reg.Client().Status().State != xdsclient.Ready && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		back := time.Since(down)
		time.Sleep(time.Second)
		stop()
		wg.Wait()
		st := c.reg.Client().Status()
		if failed.Load() > 0 {
			t.Errorf("%d of %d calls failed while istiod was away; first: %v", failed.Load(), calls.Load(), firstErr.Load())
		}
		if st.State != xdsclient.Ready || st.Streams < 2 {
			t.Errorf("after istiod came back: state %v after %d streams, want READY on a second stream", st.State, st.Streams)
		}
		t.Logf("istiod down %v: %d calls (%d by the restart), %d failed; reconnected on stream %d", back.Round(time.Millisecond), calls.Load(), duringOutage, failed.Load(), st.Streams)
	})

	t.Run("ProvidersRegisterAndLeave", func(t *testing.T) { testRegistration(ctx, t, m, eng, image) })

	t.Run("GRPCGoXDSClientCallsShoalProvider", func(t *testing.T) {
		host, err := mapping.Scheme{}.Target(key)
		if err != nil {
			t.Fatal(err)
		}
		bs := fmt.Sprintf(`{
  "xds_servers": [{"server_uri": %q, "channel_creds": [{"type": "insecure"}], "server_features": ["xds_v3"]}],
  "node": {"id": "sidecar~127.0.0.1~grpcgo-client.%[2]s~%[2]s.svc.cluster.local", "metadata": {"GENERATOR": "grpc", "NAMESPACE": %[2]q}}
}`, m.IstiodAddr(1), ns)
		// grpc-go reads its bootstrap from the environment when it starts,
		// as in any grpc-go application: run it as a process of its own
		// (this test binary, in grpcGoClient mode).
		cctx, ccancel := context.WithTimeout(ctx, 60*time.Second)
		defer ccancel()
		cmd := exec.CommandContext(cctx, os.Args[0], "-test.run=^TestGRPCGoClientProcess$", "-test.v")
		cmd.Env = append(os.Environ(), "GRPC_XDS_BOOTSTRAP_CONFIG="+bs, "SHOAL_E2E_GRPCGO_TARGET=xds:///"+host)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("grpc-go client via xds:///%s: %v\n%s", host, err, out)
		}
		served := map[string]bool{}
		for _, line := range strings.Split(string(out), "\n") {
			if v, ok := strings.CutPrefix(line, "SERVED_BY "); ok {
				served[v] = true
			}
		}
		if len(served) == 0 {
			t.Fatalf("the grpc-go client reported no call:\n%s", out)
		}
		t.Logf("grpc-go's own xDS client called xds:///%s, served by %v", host, served)
	})
}

// testRegistration: providers in containers register greet.GreetService
// (group reg) themselves through istiod-0, publishing its ServiceEntry; a
// consumer on istiod-1 finds them by interface name; as they stop, the
// mapping shrinks to the replicas left and goes with the last one.
func testRegistration(ctx context.Context, t *testing.T, m *localmesh.Mesh, eng *localmesh.Engine, image string) {
	const regApp, group = "greeter-reg", "reg"
	se := m.Dynamic().Resource(schema.GroupVersionResource{Group: "networking.istio.io", Version: "v1", Resource: "serviceentries"}).Namespace(ns)
	owners := func() ([]string, error) {
		obj, err := se.Get(ctx, regApp+"-shoal", metav1.GetOptions{})
		if err != nil {
			return nil, err
		}
		var out []string
		for _, o := range obj.GetOwnerReferences() {
			out = append(out, o.Name)
		}
		slices.Sort(out)
		return out, nil
	}
	waitOwners := func(want []string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			got, err := owners()
			if err == nil && slices.Equal(got, want) || want == nil && apierrors.IsNotFound(err) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("ServiceEntry %s-shoal owners %v (%v), want %v", regApp, got, err, want)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	run := func(name string) *localmesh.Workload {
		t.Helper()
		start := time.Now()
		w, err := m.RunWorkload(ctx, eng, localmesh.WorkloadSpec{
			Name: name, Namespace: ns, Image: image,
			Labels:     map[string]string{"app": regApp, "version": "v1"},
			Env:        map[string]string{"VERSION": "v1", "PORT": fmt.Sprint(port), "SHOAL_REGISTRY": "istio", "SHOAL_GROUP": group},
			ReadyPort:  port,
			Istiod:     0,
			KubeAccess: true,
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = w.Stop(context.Background(), 5*time.Second) })
		t.Logf("%s started and listening in %v", name, time.Since(start).Round(time.Millisecond))
		return w
	}
	a := run("reg-a")
	waitOwners([]string{"reg-a"})

	regKey := registry.Key{Interface: greettriple.GreetServiceName, Group: group}
	c := newConsumerFor(ctx, t, m.IstiodAddr(1), "consumer-reg", regKey)
	servedBy := func(n int) map[string]int {
		got := map[string]int{}
		for range n {
			resp, err := c.client.Greet(ctx, &greet.GreetRequest{Name: "reg"})
			if err != nil {
				got["error: "+err.Error()]++
				continue
			}
			got[resp.GetServedBy()]++
		}
		return got
	}
	if got := servedBy(10); got["reg-a/v1"] != 10 {
		t.Fatalf("calls by interface name (group %s) through istiod-1: %v, want all on reg-a", group, got)
	}

	b := run("reg-b")
	waitOwners([]string{"reg-a", "reg-b"})
	eventually(t, "both replicas serve", func() bool { got := servedBy(20); return got["reg-a/v1"] > 0 && got["reg-b/v1"] > 0 })

	if err := a.Stop(ctx, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	waitOwners([]string{"reg-b"})
	eventually(t, "only reg-b serves", func() bool { got := servedBy(10); return got["reg-b/v1"] == 10 })

	if err := b.Stop(ctx, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	waitOwners(nil) // the last replica deleted the mapping
	eventually(t, "the consumer sees no provider", func() bool {
		_, err := c.client.Greet(ctx, &greet.GreetRequest{Name: "gone"})
		return err != nil
	})
	t.Logf("the mapping went with the last replica")
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestGRPCGoClientProcess is grpc-go's side of
// GRPCGoXDSClientCallsShoalProvider, run as a child process with
// GRPC_XDS_BOOTSTRAP_CONFIG set; on its own it does nothing.
func TestGRPCGoClientProcess(t *testing.T) {
	target := os.Getenv("SHOAL_E2E_GRPCGO_TARGET")
	if target == "" {
		t.Skip("the grpc-go child process of TestDiscovery")
	}
	cc, err := grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cc.Close() }()
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	c := greet.NewGreetServiceClient(cc)
	for range 20 {
		resp, err := c.Greet(ctx, &greet.GreetRequest{Name: "grpc-go"}, grpc.WaitForReady(true))
		if err != nil {
			t.Fatalf("grpc-go via %s: %v", target, err)
		}
		fmt.Println("SERVED_BY " + resp.GetServedBy())
	}
}

type client struct {
	reg    *registryistio.Registry
	client greettriple.GreetServiceClient
}

func newConsumer(ctx context.Context, t *testing.T, istiod, name string) *client {
	t.Helper()
	return newConsumerFor(ctx, t, istiod, name, key)
}

func newConsumerFor(ctx context.Context, t *testing.T, istiod, name string, key registry.Key) *client {
	t.Helper()
	reg, err := registryistio.New(&bootstrap.Config{ServerURI: istiod, Node: bootstrap.Identity{
		PodName: name, Namespace: ns, IPs: []string{"127.0.0.1"},
	}.Node()}, registryistio.WithLogger(quiet),
		registryistio.WithClientOptions(xdsclient.WithBackoff(100*time.Millisecond, time.Second)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = reg.Close() })
	engine := router.BuildEngine(routermesh.Builder(routermesh.WithLogger(quiet)), router.EngineOptions{Service: key.Interface, Logger: quiet})
	ref, err := consumer.New(key, reg, tri.NewTransport(), consumer.WithEngine(engine), consumer.WithLogger(quiet), consumer.WithWaitForReady())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ref.Close() })
	// istiod may still be pushing the ServiceEntry: wait for the first
	// state that has endpoints.
	c := &client{reg: reg, client: greettriple.NewGreetServiceClient(tri.NewClient(ref))}
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := c.client.Greet(ctx, &greet.GreetRequest{Name: "first"})
		if err == nil {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never reached a provider through %s: %v", name, istiod, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
