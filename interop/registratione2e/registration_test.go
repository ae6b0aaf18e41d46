package registratione2e_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/shoalmesh/shoal/localmesh"
	"github.com/shoalmesh/shoal/proto/greet"
	"github.com/shoalmesh/shoal/proto/greet/greettriple"
	registryistio "github.com/shoalmesh/shoal/registry-istio"
	"github.com/shoalmesh/shoal/registry-istio/kubestate"
	"github.com/shoalmesh/shoal/registry-istio/mapping"
	routermesh "github.com/shoalmesh/shoal/router-mesh"
	"github.com/shoalmesh/shoal/sdk/app"
	"github.com/shoalmesh/shoal/sdk/call"
	"github.com/shoalmesh/shoal/sdk/config"
	"github.com/shoalmesh/shoal/sdk/registry"
	"github.com/shoalmesh/shoal/sdk/router"
	"github.com/shoalmesh/shoal/sdk/tri"
)

const (
	ns      = "shop"
	appName = "greeter"
	port    = 20000
)

var (
	quiet = slog.New(slog.NewTextHandler(io.Discard, nil))
	key   = registry.Key{Interface: greettriple.GreetServiceName}
	noEnv = config.WithEnv(func(string) (string, bool) { return "", false })
)

// TestDynamicRegistration runs every acceptance point of registry-istio's
// issue against one real control plane with two istiod replicas, in order:
// providers register themselves, consumers find them by interface name or
// host, istiod goes away under load, grpc-go calls in, and the providers
// stop and take their registration with them.
func TestDynamicRegistration(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real control plane with two istiods; run without -short (make test)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	start := time.Now()
	m, err := localmesh.Start(ctx, localmesh.WithIstiods(2), localmesh.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Stop()
	t.Logf("control plane (2 istiods) up in %v", time.Since(start).Round(time.Millisecond))
	if err := m.Apply(ctx, "apiVersion: v1\nkind: Namespace\nmetadata: {name: "+ns+"}\n"); err != nil {
		t.Fatal(err)
	}
	host, err := mapping.Scheme{}.Host(key)
	if err != nil {
		t.Fatal(err)
	}
	target, _ := mapping.Scheme{}.Target(key)
	var l launcher = processLauncher{logs: os.Stderr}
	spec := func(name, ip string, istiod int) providerSpec {
		return providerSpec{Name: name, App: appName, IP: ip, Port: port, Istiod: m.IstiodAddr(istiod), Kubeconfig: m.Kubeconfig(), Namespace: ns}
	}
	providers := map[string]workload{}
	defer func() {
		for _, p := range providers {
			sctx, scancel := context.WithTimeout(context.Background(), 20*time.Second)
			_ = p.Stop(sctx)
			scancel()
		}
	}()
	launch := func(t *testing.T, s providerSpec) {
		t.Helper()
		lctx, lcancel := context.WithTimeout(ctx, 45*time.Second)
		defer lcancel()
		began := time.Now()
		p, err := l.Start(lctx, s)
		if err != nil {
			t.Fatal(err)
		}
		providers[s.Name] = p
		t.Logf("%s started, registered and visible through istiod in %v", s.Name, time.Since(began).Round(time.Millisecond))
	}
	stop := func(t *testing.T, name string) {
		t.Helper()
		sctx, scancel := context.WithTimeout(ctx, 20*time.Second)
		defer scancel()
		if err := providers[name].Stop(sctx); err != nil {
			t.Errorf("%s did not stop cleanly: %v", name, err)
		}
		delete(providers, name)
	}

	t.Run("a_RegisterAndCallByInterfaceName", func(t *testing.T) {
		launch(t, spec("greeter-1", "127.0.0.21", 0))
		se := getServiceEntry(ctx, t, m)
		if hosts := seHosts(se); !slices.Equal(hosts, []string{host}) {
			t.Errorf("ServiceEntry hosts = %v, want [%s]", hosts, host)
		}
		if n := len(se.GetOwnerReferences()); n != 1 {
			t.Errorf("ServiceEntry has %d owners, want 1 (greeter-1's WorkloadEntry)", n)
		}
		c := newConsumer(ctx, t, m.IstiodAddr(0), key.Interface)
		served := c.callN(ctx, t, 5)
		if !slices.Equal(served, []string{"greeter-1"}) {
			t.Errorf("served by %v, want greeter-1", served)
		}
	})

	t.Run("c_ConsumerOnlyAppStartToFirstCall", func(t *testing.T) {
		// A consumer with no service, no port and no Kubernetes access: the
		// whole start of the application, from loading its configuration to
		// its first answered call, against an istiod that already answers.
		var took []time.Duration
		for range 5 {
			began := time.Now()
			c := newConsumer(ctx, t, m.IstiodAddr(0), key.Interface)
			took = append(took, time.Since(began))
			if len(c.app.Config().Services) != 0 || !c.app.Ready() {
				t.Fatal("the consumer-only app has a service, or is not ready")
			}
			c.close(t)
		}
		sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
		t.Logf("FIGURE start to first call via istiod: median %v (min %v, max %v, 5 runs: app.New + Start + first Greet)",
			took[2].Round(100*time.Microsecond), took[0].Round(100*time.Microsecond), took[4].Round(100*time.Microsecond))
	})

	t.Run("d_HostTarget", func(t *testing.T) {
		c := newConsumer(ctx, t, m.IstiodAddr(1), "xds:///"+target)
		if served := c.callN(ctx, t, 3); len(served) == 0 {
			t.Error("no call through the host target")
		}
	})

	t.Run("e_ReplicasOnTwoIstiods", func(t *testing.T) {
		// Two more replicas register at once through the other istiod,
		// racing on the shared ServiceEntry.
		var wg sync.WaitGroup
		errs := make(chan error, 2)
		for i, ip := range []string{"127.0.0.22", "127.0.0.23"} {
			s := spec(fmt.Sprintf("greeter-%d", i+2), ip, 1)
			wg.Go(func() {
				lctx, lcancel := context.WithTimeout(ctx, 45*time.Second)
				defer lcancel()
				p, err := l.Start(lctx, s)
				if err != nil {
					errs <- err
					return
				}
				errs <- nil
				mu.Lock()
				providers[s.Name] = p
				mu.Unlock()
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		if n := len(getServiceEntry(ctx, t, m).GetOwnerReferences()); n != 3 {
			t.Errorf("ServiceEntry has %d owners, want 3", n)
		}
		for i := range 2 {
			c := newConsumer(ctx, t, m.IstiodAddr(i), key.Interface)
			want := []string{"greeter-1", "greeter-2", "greeter-3"}
			if !eventually(10*time.Second, func() bool { return slices.Equal(c.callN(ctx, t, 30), want) }) {
				t.Errorf("consumer on istiod-%d: served by %v, want %v", i, c.callN(ctx, t, 30), want)
			}
		}
	})

	t.Run("g_GRPCGoXDSClient", func(t *testing.T) {
		bs := fmt.Sprintf(`{
  "xds_servers": [{"server_uri": %q, "channel_creds": [{"type": "insecure"}], "server_features": ["xds_v3"]}],
  "node": {"id": "sidecar~127.0.0.1~grpcgo.%[2]s~%[2]s.svc.cluster.local", "metadata": {"GENERATOR": "grpc", "NAMESPACE": %[2]q}}
}`, m.IstiodAddr(1), ns)
		cctx, ccancel := context.WithTimeout(ctx, 60*time.Second)
		defer ccancel()
		cmd := exec.CommandContext(cctx, os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "SHOAL_E2E_ROLE=grpcgo", "GRPC_XDS_BOOTSTRAP_CONFIG="+bs, "SHOAL_E2E_TARGET=xds:///"+target)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("grpc-go via xds:///%s: %v\n%s", target, err, out)
		}
		served := map[string]bool{}
		for _, line := range strings.Split(string(out), "\n") {
			if v, ok := strings.CutPrefix(line, "SERVED_BY "); ok {
				served[v] = true
			}
		}
		if len(served) == 0 {
			t.Fatalf("grpc-go reported no call:\n%s", out)
		}
		t.Logf("grpc-go's xds:///%s resolver: served by %v", target, served)
	})

	t.Run("f_IstiodDownTenSecondsUnderLoad", func(t *testing.T) {
		c := newConsumer(ctx, t, m.IstiodAddr(0), key.Interface)
		var calls, failed atomic.Int64
		var firstErr atomic.Value
		lctx, lstop := context.WithCancel(ctx)
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				for i := 0; i < 100_000 && lctx.Err() == nil; i++ {
					cctx, ccancel := context.WithTimeout(lctx, 2*time.Second)
					_, err := c.client.Greet(cctx, &greet.GreetRequest{Name: "load"})
					ccancel()
					if err != nil && lctx.Err() == nil {
						failed.Add(1)
						firstErr.CompareAndSwap(nil, err.Error())
					}
					calls.Add(1)
					time.Sleep(5 * time.Millisecond)
				}
			})
		}
		time.Sleep(500 * time.Millisecond)
		if err := m.StopIstiod(0); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Second)
		during := calls.Load()
		if err := m.StartIstiod(ctx, 0); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
		lstop()
		wg.Wait()
		if failed.Load() > 0 {
			t.Errorf("%d of %d calls failed while istiod-0 was away; first: %v", failed.Load(), calls.Load(), firstErr.Load())
		}
		t.Logf("istiod-0 killed for 10s: %d calls (%d by its restart), %d failed", calls.Load(), during, failed.Load())
	})

	t.Run("b_ProvidersStopAndTheirStateGoes", func(t *testing.T) {
		c := newConsumer(ctx, t, m.IstiodAddr(1), key.Interface)
		// One replica leaves: its endpoint and WorkloadEntry go, the shared
		// ServiceEntry stays for the others.
		stop(t, "greeter-2")
		if !eventually(10*time.Second, func() bool {
			return slices.Equal(c.callN(ctx, t, 20), []string{"greeter-1", "greeter-3"})
		}) {
			t.Errorf("after greeter-2 stopped, served by %v", c.callN(ctx, t, 20))
		}
		wes := workloadEntries(ctx, t, m)
		if slices.Contains(wes, "greeter-127-0-0-22-20000") || len(wes) != 2 {
			t.Errorf("WorkloadEntries after greeter-2 stopped: %v", wes)
		}
		se := getServiceEntry(ctx, t, m)
		if se == nil || len(se.GetOwnerReferences()) != 2 || !slices.Equal(seHosts(se), []string{host}) {
			t.Errorf("the shared ServiceEntry after one of three replicas left: %v", se)
		}
		// The last replicas leave together: nothing is left behind.
		var wg sync.WaitGroup
		for _, name := range []string{"greeter-1", "greeter-3"} {
			p := providers[name]
			delete(providers, name)
			wg.Go(func() {
				sctx, scancel := context.WithTimeout(ctx, 20*time.Second)
				defer scancel()
				if err := p.Stop(sctx); err != nil {
					t.Errorf("%s: %v", name, err)
				}
			})
		}
		wg.Wait()
		if _, err := m.Dynamic().Resource(kubestate.ServiceEntries).Namespace(ns).Get(ctx, appName+"-shoal", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("the ServiceEntry is still there after the last replica stopped (%v)", err)
		}
		if wes := workloadEntries(ctx, t, m); len(wes) != 0 {
			t.Errorf("WorkloadEntries left: %v", wes)
		}
		// The mapping is gone from istiod: calls find no provider.
		var last error
		if !eventually(10*time.Second, func() bool {
			cctx, ccancel := context.WithTimeout(ctx, time.Second)
			defer ccancel()
			_, last = c.client.Greet(cctx, &greet.GreetRequest{Name: "gone"})
			return last != nil && call.CodeOf(last) == call.Unavailable
		}) {
			t.Errorf("a call after every provider stopped: %v, want UNAVAILABLE", last)
		}
		t.Logf("after the last provider stopped: %v", last)
		// A fresh watch of the interface finds no service at all: istiod no
		// longer has the host (its listener is gone), not only its endpoints.
		reg, _ := c.app.Registry("mesh")
		if !eventually(10*time.Second, func() bool { return servicesOf(ctx, t, reg) == 0 }) {
			t.Errorf("istiod still serves %s after its ServiceEntry was deleted", host)
		}
	})
}

var mu sync.Mutex // guards providers while replicas start in parallel

type consumerApp struct {
	app    *app.App
	client greettriple.GreetServiceClient
}

// newConsumer starts a consumer-only application as a user writes one, with
// the istio registry pointed at istiod and dynamic registration off (publish: false), and
// returns once a first call succeeded.
func newConsumer(ctx context.Context, t *testing.T, istiod, iface string) *consumerApp {
	t.Helper()
	cfg, err := config.Load(config.WithoutFile(), noEnv, config.WithApplicationName("consumer"),
		config.WithRegistry(config.Registry{Name: "mesh", Kind: registryistio.Name, Address: istiod, Params: map[string]string{"publish": "false"}}),
		config.WithReference(config.Reference{Name: "greet", Interface: iface, Router: routermesh.EngineName, WaitForReady: true}),
		config.Modify(func(c *config.Config) { c.Logging.Level = "warn" }))
	if err != nil {
		t.Fatal(err)
	}
	a, err := app.New(cfg,
		app.WithRegistryBuilders(registry.NewBuilders(registryistio.Builder())),
		app.WithEngines(router.NewEngines(routermesh.Builder(routermesh.WithLogger(quiet)))),
		app.WithTransport(tri.NewTransport()), app.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	c := &consumerApp{app: a}
	t.Cleanup(func() { c.close(t) })
	ref, err := a.Reference("greet")
	if err != nil {
		t.Fatal(err)
	}
	c.client = greettriple.NewGreetServiceClient(tri.NewClient(ref))
	cctx, ccancel := context.WithTimeout(ctx, 10*time.Second)
	defer ccancel()
	if _, err := c.client.Greet(cctx, &greet.GreetRequest{Name: "first"}); err != nil {
		t.Fatalf("first call to %s through %s: %v", iface, istiod, err)
	}
	return c
}

func (c *consumerApp) close(t *testing.T) {
	if c.app == nil {
		return
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.app.Stop(sctx); err != nil {
		t.Errorf("consumer stop: %v", err)
	}
	c.app = nil
}

// callN makes n calls and returns the sorted set of replicas that served
// them.
func (c *consumerApp) callN(ctx context.Context, t *testing.T, n int) []string {
	t.Helper()
	seen := map[string]bool{}
	for range n {
		cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		resp, err := c.client.Greet(cctx, &greet.GreetRequest{Name: "e2e"})
		cancel()
		if err != nil {
			t.Errorf("call: %v", err)
			continue
		}
		seen[resp.GetServedBy()] = true
	}
	var out []string
	for k := range seen {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// servicesOf watches the interface afresh and counts the services of the
// first snapshot.
func servicesOf(ctx context.Context, t *testing.T, reg registry.Registry) int {
	t.Helper()
	w, err := reg.Watch(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = w.Close() }()
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	s, err := w.Next(wctx)
	if err != nil {
		t.Logf("watch %s: %v", key.Interface, err)
		return -1
	}
	return len(s.Services())
}

func eventually(limit time.Duration, f func() bool) bool {
	deadline := time.Now().Add(limit)
	for {
		if f() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func getServiceEntry(ctx context.Context, t *testing.T, m *localmesh.Mesh) *unstructuredObj {
	t.Helper()
	se, err := m.Dynamic().Resource(kubestate.ServiceEntries).Namespace(ns).Get(ctx, appName+"-shoal", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("ServiceEntry %s/%s-shoal: %v", ns, appName, err)
	}
	return se
}

func seHosts(se *unstructuredObj) []string {
	hosts, _, _ := unstructuredNestedStrings(se.Object, "spec", "hosts")
	return hosts
}

func workloadEntries(ctx context.Context, t *testing.T, m *localmesh.Mesh) []string {
	t.Helper()
	list, err := m.Dynamic().Resource(kubestate.WorkloadEntries).Namespace(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, we := range list.Items {
		names = append(names, we.GetName())
	}
	sort.Strings(names)
	return names
}

type unstructuredObj = unstructured.Unstructured

var unstructuredNestedStrings = unstructured.NestedStringSlice
