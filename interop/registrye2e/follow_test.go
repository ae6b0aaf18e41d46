package registrye2e_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoalmesh/shoal/interop/internal/e2etest"

	"github.com/shoalmesh/shoal/localmesh"
	"github.com/shoalmesh/shoal/proto/greet"
	"github.com/shoalmesh/shoal/proto/greet/greettriple"
	registryistio "github.com/shoalmesh/shoal/registry-istio"
	"github.com/shoalmesh/shoal/registry-istio/bootstrap"
	"github.com/shoalmesh/shoal/registry-istio/xdsclient"
	routermesh "github.com/shoalmesh/shoal/router-mesh"
	"github.com/shoalmesh/shoal/sdk/consumer"
	"github.com/shoalmesh/shoal/sdk/registry"
	"github.com/shoalmesh/shoal/sdk/router"
	"github.com/shoalmesh/shoal/sdk/tri"
	"github.com/shoalmesh/shoal/triple"
)

const (
	followHost   = app + "." + ns + ".svc.cluster.local"
	followTarget = "xds:///" + followHost + ":50051"
)

var (
	hostKey = registry.Key{Interface: followTarget}
	appKey  = registry.Key{Interface: greettriple.GreetServiceName, ProvidedBy: app}
)

// followBase is greeter's Service on the app port every providedBy
// reference resolves to (50051, registry-istio's default) and the
// DestinationRule naming subsets v1 and v2.
const followBase = `
apiVersion: v1
kind: Service
metadata: {name: greeter, namespace: default}
spec:
  selector: {app: greeter}
  ports: [{name: grpc-tri, port: 50051, targetPort: 20000, protocol: TCP}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: greeter, namespace: default}
spec:
  host: greeter.default.svc.cluster.local
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
`

func followVS(routes string) string {
	return `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: greeter, namespace: default}
spec:
  hosts: [greeter.default.svc.cluster.local]
  http:
` + routes
}

func allTo(subset string) string {
	return followVS(fmt.Sprintf(`
  - route:
    - destination: {host: greeter.default.svc.cluster.local, subset: %s}
`, subset))
}

// TestFollowIstiod checks, against a real istiod, that the registry
// follows what istiod says where it used to lose it: VirtualService
// headers.request edits reach the provider, a reference opened again (or
// a providedBy reference after a host reference to the same listener) gets
// data, and a change applied right after istiod restarts reaches the
// consumer promptly. Providers v1 and v2 run in containers published as
// Pods; consumers run with registry-istio's default settings.
func TestFollowIstiod(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real control plane and containers; run without -short (make test)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	m, eng, image := startMesh(ctx, t, 1)
	if err := m.Apply(ctx, followBase+"---"+allTo("v1")); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"v1", "v2"} {
		w, err := m.RunWorkload(ctx, eng, localmesh.WorkloadSpec{
			Name: "greeter-" + v, Namespace: ns, Image: image,
			Labels:    map[string]string{"app": app, "version": v},
			Env:       map[string]string{"VERSION": v, "PORT": fmt.Sprint(port)},
			ReadyPort: port,
		})
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = w.Stop(context.Background(), 5*time.Second) }()
	}
	istiod := m.IstiodAddr(0)

	t.Run("HeadersRequestReachTheProvider", func(t *testing.T) { testHeaderEdits(ctx, t, m, istiod) })
	t.Run("ReferenceClosedAndReopened", func(t *testing.T) { testReopen(ctx, t, istiod, "consumer-reopen", hostKey, hostKey) })
	t.Run("ProvidedByAfterHostReference", func(t *testing.T) { testReopen(ctx, t, istiod, "consumer-by-app", hostKey, appKey) })
	t.Run("ChangeRightAfterIstiodRestart", func(t *testing.T) { testRestart(ctx, t, m) })
}

// startMesh starts a control plane with n istiods and builds the
// meshgreeter provider image; both are stopped by t's cleanup.
func startMesh(ctx context.Context, t *testing.T, n int) (*localmesh.Mesh, *localmesh.Engine, string) {
	t.Helper()
	m, eng, image := e2etest.StartMesh(ctx, t, t.Cleanup, quiet, localmesh.WithIstiods(n))
	return m, eng, image
}

// follower is a consumer app's registry and one reference on it.
type follower struct {
	reg *registryistio.Registry
	ref *consumer.Reference
	c   greettriple.GreetServiceClient
}

func newRegistry(t *testing.T, istiod, name string, opts ...xdsclient.Option) *registryistio.Registry {
	t.Helper()
	reg, err := registryistio.New(&bootstrap.Config{ServerURI: istiod, Node: bootstrap.Identity{
		PodName: name, Namespace: ns, IPs: []string{"127.0.0.1"},
	}.Node()}, registryistio.WithLogger(quiet), registryistio.WithClientOptions(opts...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = reg.Close() })
	return reg
}

// open opens a reference on reg, without waiting for anything.
func open(t *testing.T, reg *registryistio.Registry, key registry.Key) *follower {
	t.Helper()
	engine := router.BuildEngine(routermesh.Builder(routermesh.WithLogger(quiet)), router.EngineOptions{Service: key.Interface, Logger: quiet})
	ref, err := consumer.New(key, reg, tri.NewTransport(), consumer.WithEngine(engine), consumer.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	return &follower{reg: reg, ref: ref, c: greettriple.NewGreetServiceClient(tri.NewClient(ref))}
}

// firstAnswer calls until a call is answered or limit passes, and returns
// the answer, how long it took and the last error.
func (f *follower) firstAnswer(ctx context.Context, req *greet.GreetRequest, limit time.Duration, md ...string) (*greet.GreetResponse, time.Duration, error) {
	start := time.Now()
	cctx := ctx
	if len(md) > 0 {
		cctx = triple.AppendToOutgoingContext(ctx, md...)
	}
	var lastErr error
	for time.Since(start) < limit {
		resp, err := f.c.Greet(cctx, req)
		if err == nil {
			return resp, time.Since(start), nil
		}
		lastErr = err
		time.Sleep(5 * time.Millisecond)
	}
	return nil, time.Since(start), lastErr
}

func version(servedBy string) string {
	_, v, _ := strings.Cut(servedBy, "/")
	return v
}

// A VirtualService's headers.request, on the route (set x-env, add
// x-tenant, remove x-debug) and on each weighted destination (set x-dest;
// v2 also removes x-user), is applied to every call: the provider sees the
// set and added headers and not the removed ones.
func testHeaderEdits(ctx context.Context, t *testing.T, m *localmesh.Mesh, istiod string) {
	f := open(t, newRegistry(t, istiod, "consumer-headers"), hostKey)
	defer func() { _ = f.ref.Close() }()
	if _, _, err := f.firstAnswer(ctx, &greet.GreetRequest{Name: "warm"}, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	applied := time.Now()
	if err := m.Apply(ctx, followVS(`
  - headers:
      request:
        set: {x-env: prod}
        add: {x-tenant: blue}
        remove: [x-debug]
    route:
    - destination: {host: greeter.default.svc.cluster.local, subset: v1}
      weight: 50
      headers: {request: {set: {x-dest: v1}}}
    - destination: {host: greeter.default.svc.cluster.local, subset: v2}
      weight: 50
      headers: {request: {set: {x-dest: v2}, remove: [x-user]}}
`)); err != nil {
		t.Fatal(err)
	}
	md := []string{"x-env", "dev", "x-debug", "1", "x-user", "u1"}
	cctx := triple.AppendToOutgoingContext(ctx, md...)
	// Wait for the rule: the first call that carries its edits.
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := f.c.Greet(cctx, &greet.GreetRequest{Name: "headers"})
		if err == nil && resp.GetSeen()["x-env"] == "prod" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the headers rule never reached the provider: last %v, %v", resp.GetSeen(), err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("the headers rule reached the provider %v after the apply", time.Since(applied).Round(time.Millisecond))
	byVersion := map[string]int{}
	for range 200 {
		resp, err := f.c.Greet(cctx, &greet.GreetRequest{Name: "headers"})
		if err != nil {
			t.Fatal(err)
		}
		v := version(resp.GetServedBy())
		byVersion[v]++
		want := map[string]string{"x-env": "prod", "x-tenant": "blue", "x-dest": v, "x-user": "u1"}
		if v == "v2" {
			delete(want, "x-user")
		}
		if got := resp.GetSeen(); !maps.Equal(got, want) {
			t.Fatalf("%s saw %v, want %v (x-debug removed on the route, x-user on v2)", resp.GetServedBy(), got, want)
		}
	}
	if byVersion["v1"] == 0 || byVersion["v2"] == 0 {
		t.Fatalf("200 calls served by %v, want both destinations (50/50)", byVersion)
	}
	t.Logf("200 calls (%v) each saw exactly the edited headers", byVersion)
}

// A reference is opened and closed, then a second one is opened on the same
// registry (one xDS client) to the same listener: it gets data at once. The
// old client waited for an answer istiod never sends (the listener's name
// stayed subscribed): "no discovery state yet" for 15 s, then NOT_FOUND.
func testReopen(ctx context.Context, t *testing.T, istiod, name string, first, second registry.Key) {
	reg := newRegistry(t, istiod, name)
	const tries = 3
	var took []time.Duration
	for i := range tries {
		a := open(t, reg, first)
		if _, _, err := a.firstAnswer(ctx, &greet.GreetRequest{Name: "first"}, 30*time.Second); err != nil {
			t.Fatalf("first reference (%s): %v", first, err)
		}
		if err := a.ref.Close(); err != nil {
			t.Fatal(err)
		}
		b := open(t, reg, second)
		_, d, err := b.firstAnswer(ctx, &greet.GreetRequest{Name: "again"}, 10*time.Second)
		_ = b.ref.Close()
		if err != nil {
			t.Fatalf("try %d: the reference (%s) opened after closing %s got no answer within %v: %v", i+1, second, first, d.Round(time.Millisecond), err)
		}
		took = append(took, d)
	}
	t.Logf("%s after closing %s: first answer after %v (%d tries)", second, first, took, tries)
}

// istiod is killed (SIGKILL) for 10 s and started again; right after it
// serves, a VirtualService moves all calls to the other subset. Measured:
// from istiod serving again (StartIstiod returned: it answered an ADS
// stream) until the consumer's calls follow, for a consumer with the default
// settings and, side by side, one whose connection probe is off (the
// backoff alone, as before). Calls run throughout; none may fail.
func testRestart(ctx context.Context, t *testing.T, m *localmesh.Mesh) {
	istiod := m.IstiodAddr(0)
	kinds := []string{"probing", "backoff-only"}
	consumers := map[string]*follower{
		"probing":      open(t, newRegistry(t, istiod, "consumer-probing"), hostKey),
		"backoff-only": open(t, newRegistry(t, istiod, "consumer-backoff", xdsclient.WithReconnectProbe(0, 0)), hostKey),
	}
	for _, k := range kinds {
		f := consumers[k]
		defer func() { _ = f.ref.Close() }()
		if _, _, err := f.firstAnswer(ctx, &greet.GreetRequest{Name: "warm"}, 30*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.Apply(ctx, allTo("v1")); err != nil {
		t.Fatal(err)
	}
	// waitAll waits until 50 calls in a row of each consumer are served by
	// subset (the rule in force before may split between both).
	waitAll := func(subset string) {
		t.Helper()
		for _, k := range kinds {
			deadline := time.Now().Add(30 * time.Second)
			for inARow := 0; inARow < 50; {
				resp, err := consumers[k].c.Greet(ctx, &greet.GreetRequest{Name: "settle"})
				if err == nil && version(resp.GetServedBy()) == subset {
					inARow++
					continue
				}
				inARow = 0
				if time.Now().After(deadline) {
					t.Fatalf("%s never moved to %s: %v", k, subset, err)
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
	}
	waitAll("v1")

	var calls, failed atomic.Int64
	var firstErr atomic.Value
	lctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, k := range kinds {
		for range 2 {
			wg.Go(func() {
				for i := 0; i < 1_000_000 && lctx.Err() == nil; i++ {
					if _, err := consumers[k].c.Greet(lctx, &greet.GreetRequest{Name: "load"}); err != nil && lctx.Err() == nil {
						failed.Add(1)
						firstErr.CompareAndSwap(nil, k+": "+err.Error())
					}
					calls.Add(1)
					time.Sleep(5 * time.Millisecond)
				}
			})
		}
	}
	defer func() { stop(); wg.Wait() }()

	const runs = 5
	follow := map[string][]time.Duration{}
	var restart []time.Duration
	for run := range runs {
		subset := []string{"v2", "v1"}[run%2]
		if err := m.StopIstiod(0); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Second)
		startedAt := time.Now()
		if err := m.StartIstiod(ctx, 0); err != nil {
			t.Fatal(err)
		}
		serving := time.Now()
		restart = append(restart, serving.Sub(startedAt))
		if err := m.Apply(ctx, allTo(subset)); err != nil {
			t.Fatal(err)
		}
		applied := time.Since(serving)
		var mu sync.Mutex
		var fwg sync.WaitGroup
		for _, k := range kinds {
			fwg.Go(func() {
				d, err := followTime(ctx, consumers[k], subset, serving)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					t.Errorf("run %d: %s: %v", run+1, k, err)
					return
				}
				follow[k] = append(follow[k], d)
			})
		}
		fwg.Wait()
		mu.Lock()
		t.Logf("run %d: istiod serving %v after its start; VirtualService applied %v later; followed after %v (probing) and %v (backoff only)",
			run+1, restart[run].Round(time.Millisecond), applied.Round(time.Millisecond), last(follow["probing"]), last(follow["backoff-only"]))
		mu.Unlock()
		if t.Failed() {
			return
		}
	}
	stop()
	wg.Wait()
	if failed.Load() > 0 {
		t.Errorf("%d of %d calls failed through 5 istiod restarts; first: %v", failed.Load(), calls.Load(), firstErr.Load())
	}
	for _, k := range kinds {
		st := consumers[k].reg.Client().Status()
		if st.Streams < runs+1 {
			t.Errorf("%s: %d ADS streams after %d restarts, want %d", k, st.Streams, runs, runs+1)
		}
	}
	t.Logf("from istiod serving again to the consumer following a VirtualService applied right then, %d runs: probing (default) median %v %v; backoff only median %v %v; %d calls under load, %d failed",
		runs, median(follow["probing"]), follow["probing"], median(follow["backoff-only"]), follow["backoff-only"], calls.Load(), failed.Load())
}

// followTime calls until a call is served by subset and returns the time
// since from.
func followTime(ctx context.Context, f *follower, subset string, from time.Time) (time.Duration, error) {
	deadline := from.Add(60 * time.Second)
	for {
		resp, err := f.c.Greet(ctx, &greet.GreetRequest{Name: "follow"})
		if err == nil && version(resp.GetServedBy()) == subset {
			return time.Since(from).Round(time.Millisecond), nil
		}
		if time.Now().After(deadline) {
			if err == nil {
				err = errors.New("still served by " + resp.GetServedBy())
			}
			return 0, fmt.Errorf("did not follow to %s within 60s: %w; xDS status %s since %v", subset, err, f.reg.Client().Status().State, f.reg.Client().Status().StateSince)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func last(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	return d[len(d)-1]
}

func median(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}
