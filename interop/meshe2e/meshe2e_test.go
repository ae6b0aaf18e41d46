package meshe2e_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoalmesh/shoal/interop/internal/e2etest"

	"go.uber.org/goleak"

	"github.com/shoalmesh/shoal/localmesh"
	"github.com/shoalmesh/shoal/proto/greet"
	"github.com/shoalmesh/shoal/proto/greet/greettriple"
	registryistio "github.com/shoalmesh/shoal/registry-istio"
	"github.com/shoalmesh/shoal/registry-istio/bootstrap"
	routermesh "github.com/shoalmesh/shoal/router-mesh"
	"github.com/shoalmesh/shoal/sdk/consumer"
	"github.com/shoalmesh/shoal/sdk/mesh"
	"github.com/shoalmesh/shoal/sdk/registry"
	"github.com/shoalmesh/shoal/sdk/router"
	"github.com/shoalmesh/shoal/sdk/tri"
	"github.com/shoalmesh/shoal/triple"
)

func TestMain(m *testing.M) {
	code := m.Run()
	stopShared() // the control plane every test of the package shared
	if code == 0 {
		if err := goleak.Find(e2etest.IgnoreControlPlane...); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// shared is the package's one control plane, workloads and consumer:
// started by the first test that asks (sharedEnv), stopped after the last
// (TestMain), so tests in several files pay for one start.
var shared struct {
	mu       sync.Mutex
	e        *env
	failed   bool
	cleanups []func()
}

// meshTest skips under -short, else returns a context bounding the test
// and the shared environment.
func meshTest(t *testing.T) (context.Context, *env) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a real control plane and containers; run without -short (make test)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	t.Cleanup(cancel)
	return ctx, sharedEnv(ctx, t)
}

// sharedEnv returns the shared environment, starting it on first use.
func sharedEnv(ctx context.Context, t *testing.T) *env {
	t.Helper()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.e == nil {
		if shared.failed {
			t.Fatal("the shared control plane failed to start in an earlier test")
		}
		shared.failed = true // until setup returns
		shared.e = setup(ctx, t)
		shared.failed = false
	}
	return shared.e
}

// addCleanup registers f to run when the shared environment stops, after
// the functions registered after it.
func addCleanup(f func()) { shared.cleanups = append(shared.cleanups, f) }

func stopShared() {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	for i := len(shared.cleanups) - 1; i >= 0; i-- {
		shared.cleanups[i]()
	}
	shared.cleanups, shared.e = nil, nil
}

const (
	ns     = "default"
	svc    = "greeter"
	host   = svc + "." + ns + ".svc.cluster.local"
	port   = 20000
	target = "xds:///" + host + ":20000"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// base is the Service over the greeter Pods and the DestinationRule naming
// subsets v1 and v2.
const base = e2etest.GreeterRules

// virtualService wraps HTTP routes (YAML list items, indented four spaces)
// in greeter's VirtualService.
func virtualService(routes string) string {
	return `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: greeter, namespace: default}
spec:
  hosts: [greeter.default.svc.cluster.local]
  http:
` + routes
}

func split(v1, v2 int) string {
	return virtualService(fmt.Sprintf(`
  - route:
    - {destination: {host: greeter.default.svc.cluster.local, subset: v1}, weight: %d}
    - {destination: {host: greeter.default.svc.cluster.local, subset: v2}, weight: %d}
`, v1, v2))
}

// env is what every subtest shares: one control plane, the greeter
// workloads, and a consumer that knows only the target.
type env struct {
	m      *localmesh.Mesh
	eng    *localmesh.Engine
	reg    *registryistio.Registry
	ref    *consumer.Reference
	client greettriple.GreetServiceClient
	pods   map[string]*localmesh.Workload // by version
	last   *mesh.Snapshot                 // what apply saw last, for failure messages
}

// dump describes the last snapshot apply saw, for failure messages.
func (e *env) dump() string {
	if e.last == nil {
		return "no snapshot"
	}
	var b strings.Builder
	for _, r := range e.last.Routes() {
		fmt.Fprintf(&b, "\n  route %q matches %+v -> %+v policy %+v", r.Name, r.Matches, r.Destinations, r.Policy)
		if f := r.Policy.Fault; f != nil {
			fmt.Fprintf(&b, " fault delay %+v abort %+v", f.Delay, f.Abort)
		}
		if rp := r.Policy.Retry; rp != nil {
			fmt.Fprintf(&b, " retry %+v", *rp)
		}
	}
	for _, c := range e.last.Clusters() {
		fmt.Fprintf(&b, "\n  cluster %s endpoints %d policy %+v", c.Destination(), len(c.Endpoints()), c.Policy())
		if lb := c.Policy().LoadBalancer; lb != nil {
			fmt.Fprintf(&b, " lb %+v hash %+v", *lb, lb.ConsistentHash)
		}
	}
	return b.String()
}

// TestMesh runs Istio traffic management end to end: real istiod, real
// kube-apiserver and controller-manager, Go providers v1 and v2 in
// containers published as Pods, and a Shoal consumer on the host that knows
// only the target; rules are applied as kubectl apply would.
func TestMesh(t *testing.T) {
	ctx, e := meshTest(t)

	t.Run("WeightedSplitAndLiveShift", func(t *testing.T) { testSplit(ctx, t, e) })
	t.Run("HeaderMatch", func(t *testing.T) { testHeaderMatch(ctx, t, e) })
	t.Run("FaultAbort", func(t *testing.T) { testFaultAbort(ctx, t, e) })
	t.Run("FaultDelay", func(t *testing.T) { testFaultDelay(ctx, t, e) })
	t.Run("RetriesHideFlakyProvider", func(t *testing.T) { testRetries(ctx, t, e) })
	t.Run("RouteTimeout", func(t *testing.T) { testTimeout(ctx, t, e) })
	t.Run("OutlierEjection", func(t *testing.T) { testOutlier(ctx, t, e) })
	t.Run("ConsistentHash", func(t *testing.T) { testConsistentHash(ctx, t, e) })
}

// setup starts the shared environment; use sharedEnv. What it starts is
// stopped by stopShared.
func setup(ctx context.Context, t *testing.T) *env {
	t.Helper()
	start := time.Now()
	m, eng, image := e2etest.StartMesh(ctx, t, addCleanup, quiet)
	if err := m.Apply(ctx, base+"---"+split(100, 0)); err != nil {
		t.Fatal(err)
	}
	e := &env{m: m, eng: eng, pods: map[string]*localmesh.Workload{}}
	for _, v := range []string{"v1", "v2"} {
		w, err := m.RunWorkload(ctx, eng, localmesh.WorkloadSpec{
			Name:      "greeter-" + v,
			Image:     image,
			Labels:    map[string]string{"app": svc, "version": v},
			Env:       map[string]string{"VERSION": v, "PORT": fmt.Sprint(port)},
			ReadyPort: port,
		})
		if err != nil {
			t.Fatal(err)
		}
		addCleanup(func() {
			if err := w.Stop(context.Background(), 5*time.Second); err != nil {
				fmt.Fprintf(os.Stderr, "stop %s: %v\n", w.Name(), err)
			}
		})
		e.pods[v] = w
	}
	t.Logf("control plane, image and two provider containers up in %v", time.Since(start).Round(time.Millisecond))

	cfg := &bootstrap.Config{ServerURI: m.IstiodAddr(0), Node: bootstrap.Identity{
		PodName: "e2e-consumer", Namespace: ns, IPs: []string{"127.0.0.1"},
	}.Node()}
	var err error
	e.reg, err = registryistio.New(cfg, registryistio.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	addCleanup(func() { _ = e.reg.Close() })
	// istiod's grpc generator does not send outlierDetection; the consumer
	// sets it locally (see registry-istio's README).
	e.ref = e.reference(t, []routermesh.Option{routermesh.WithDefaultOutlierDetection(mesh.OutlierDetection{
		Consecutive5xxErrors: 3, Interval: 500 * time.Millisecond,
		BaseEjectionTime: 2 * time.Second, MaxEjectionPercent: 50,
	})}, consumer.WithTimeout(5*time.Second))
	addCleanup(func() { _ = e.ref.Close() })
	e.client = greettriple.NewGreetServiceClient(tri.NewClient(e.ref))

	first := time.Now()
	if _, err := e.client.Greet(ctx, &greet.GreetRequest{Name: "first"}); err != nil {
		t.Fatalf("first call through istiod: %v", err)
	}
	t.Logf("first call through istiod %v after the consumer was created", time.Since(first).Round(time.Millisecond))
	return e
}

// reference is a consumer of the target through e.reg with the mesh
// engine, waiting for ready endpoints; the caller closes it.
func (e *env) reference(t *testing.T, engineOpts []routermesh.Option, opts ...consumer.Option) *consumer.Reference {
	t.Helper()
	engine := router.BuildEngine(routermesh.Builder(append([]routermesh.Option{routermesh.WithLogger(quiet)}, engineOpts...)...),
		router.EngineOptions{Service: target, Logger: quiet})
	ref, err := consumer.New(registry.Key{Interface: target}, e.reg, tri.NewTransport(),
		append([]consumer.Option{consumer.WithEngine(engine), consumer.WithLogger(quiet), consumer.WithWaitForReady()}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

// apply applies rules and waits until the consumer's own registry serves a
// snapshot for which ok holds; it returns how long that took.
func (e *env) apply(ctx context.Context, t *testing.T, yaml string, ok func(*mesh.Snapshot) bool) time.Duration {
	t.Helper()
	w, err := e.reg.Watch(ctx, registry.Key{Interface: target})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = w.Close() }()
	applied := time.Now()
	if err := e.m.Apply(ctx, yaml); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	for {
		snap, err := w.Next(wctx)
		if err != nil {
			t.Fatalf("the rules never reached the consumer: %v; last snapshot:%s", err, e.dump())
		}
		e.last = snap
		if ok(snap) {
			d := time.Since(applied)
			// This watcher and the consumer's are told in the same
			// callback round, but the consumer installs its new routing
			// state on its own goroutine: let it land before the test
			// calls.
			time.Sleep(100 * time.Millisecond)
			return d
		}
	}
}

// weights reports whether the first route splits v1:v2 as given.
func weights(v1, v2 uint32) func(*mesh.Snapshot) bool {
	return func(s *mesh.Snapshot) bool {
		rs := s.Routes()
		if len(rs) == 0 {
			return false
		}
		got := map[string]uint32{}
		for _, d := range rs[0].Destinations {
			got[d.Subset] = d.Weight
		}
		return got["v1"] == v1 && got["v2"] == v2 && len(rs) == 1
	}
}

// routeWith reports whether some route's policy or matches satisfy f.
func routeWith(f func(mesh.Route) bool) func(*mesh.Snapshot) bool {
	return func(s *mesh.Snapshot) bool {
		for _, r := range s.Routes() {
			if f(r) {
				return true
			}
		}
		return false
	}
}

// tally makes n calls and counts them by version that served them, and by
// error code for failures.
func (e *env) tally(ctx context.Context, n int, req *greet.GreetRequest, md ...string) (byVersion map[string]int, byCode map[triple.Code]int) {
	byVersion, byCode = map[string]int{}, map[triple.Code]int{}
	cctx := ctx
	if len(md) > 0 {
		cctx = triple.AppendToOutgoingContext(ctx, md...)
	}
	for range n {
		resp, err := e.client.Greet(cctx, req)
		if err != nil {
			byCode[triple.CodeOf(err)]++
			continue
		}
		byVersion[version(resp.GetServedBy())]++
	}
	return byVersion, byCode
}

func version(servedBy string) string {
	_, v, _ := strings.Cut(servedBy, "/")
	return v
}

// within reports whether got/n is p +/- tol.
func within(got, n int, p, tol float64) bool {
	return math.Abs(float64(got)/float64(n)-p) <= tol
}

// VirtualService 80/20: 1,000 calls land 80 +/- 5 % on v1. Changed to 50/50,
// the consumer follows within a second, with no failed call during the
// change.
func testSplit(ctx context.Context, t *testing.T, e *env) {
	d := e.apply(ctx, t, split(80, 20), weights(80, 20))
	t.Logf("80/20 reached the consumer %v after the apply", d.Round(time.Millisecond))
	by, codes := e.tally(ctx, 1000, &greet.GreetRequest{Name: "split"})
	if len(codes) > 0 || !within(by["v1"], 1000, 0.80, 0.05) {
		t.Fatalf("80/20: v1 %d, v2 %d of 1000 (failures %v); want v1 800 +/- 50 and no failure", by["v1"], by["v2"], codes)
	}
	t.Logf("80/20: v1 %d, v2 %d of 1000", by["v1"], by["v2"])

	// Steady load through the change.
	var calls, failed atomic.Int64
	var firstErr atomic.Value
	lctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for i := 0; i < 100000 && lctx.Err() == nil; i++ {
				_, err := e.client.Greet(lctx, &greet.GreetRequest{Name: "load"})
				if err != nil && lctx.Err() == nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
				}
				calls.Add(1)
			}
		})
	}
	time.Sleep(300 * time.Millisecond)
	d = e.apply(ctx, t, split(50, 50), weights(50, 50))
	time.Sleep(300 * time.Millisecond)
	stop()
	wg.Wait()
	if d > time.Second {
		t.Errorf("the 50/50 split reached the consumer %v after kubectl apply, want under 1s", d)
	}
	if failed.Load() > 0 {
		t.Errorf("%d of %d calls failed during the change; first: %v", failed.Load(), calls.Load(), firstErr.Load())
	}
	t.Logf("50/50 reached the consumer %v after the apply; %d calls under load during the change, %d failed", d.Round(time.Millisecond), calls.Load(), failed.Load())
	by, codes = e.tally(ctx, 1000, &greet.GreetRequest{Name: "split"})
	if len(codes) > 0 || !within(by["v1"], 1000, 0.50, 0.05) {
		t.Fatalf("50/50: v1 %d, v2 %d of 1000 (failures %v); want v1 500 +/- 50", by["v1"], by["v2"], codes)
	}
	t.Logf("50/50: v1 %d, v2 %d of 1000", by["v1"], by["v2"])
}

// A header match sends tagged calls to v2 only; the rest follow the default
// route (all v1 here).
func testHeaderMatch(ctx context.Context, t *testing.T, e *env) {
	e.apply(ctx, t, virtualService(`
  - match:
    - headers: {x-canary: {exact: "true"}}
    route:
    - destination: {host: greeter.default.svc.cluster.local, subset: v2}
  - route:
    - destination: {host: greeter.default.svc.cluster.local, subset: v1}
`), func(s *mesh.Snapshot) bool { return len(s.Routes()) == 2 })
	by, codes := e.tally(ctx, 200, &greet.GreetRequest{Name: "tagged"}, "x-canary", "true")
	if len(codes) > 0 || by["v2"] != 200 {
		t.Errorf("tagged calls: %v (failures %v), want all 200 on v2", by, codes)
	}
	by, codes = e.tally(ctx, 200, &greet.GreetRequest{Name: "plain"}, "x-canary", "false")
	if len(codes) > 0 || by["v1"] != 200 {
		t.Errorf("untagged calls: %v (failures %v), want all 200 on v1", by, codes)
	}
}

// Fault abort 50 % with UNAVAILABLE: about half the calls fail with it.
func testFaultAbort(ctx context.Context, t *testing.T, e *env) {
	e.apply(ctx, t, virtualService(`
  - fault:
      abort: {percentage: {value: 50}, grpcStatus: UNAVAILABLE}
    route:
    - destination: {host: greeter.default.svc.cluster.local, subset: v1}
`), routeWith(func(r mesh.Route) bool { return r.Policy.Fault != nil && r.Policy.Fault.Abort != nil }))
	by, codes := e.tally(ctx, 1000, &greet.GreetRequest{Name: "fault"})
	if !within(codes[triple.CodeUnavailable], 1000, 0.50, 0.05) || len(codes) != 1 {
		t.Errorf("abort 50%%: failures %v, successes %v of 1000; want 500 +/- 50 UNAVAILABLE and no other code", codes, by)
	}
	t.Logf("abort 50%%: %d of 1000 failed with UNAVAILABLE", codes[triple.CodeUnavailable])
}

// A 200 ms delay fault shows up in the measured latency.
func testFaultDelay(ctx context.Context, t *testing.T, e *env) {
	e.apply(ctx, t, virtualService(`
  - fault:
      delay: {percentage: {value: 100}, fixedDelay: 200ms}
    route:
    - destination: {host: greeter.default.svc.cluster.local, subset: v1}
`), routeWith(func(r mesh.Route) bool { return r.Policy.Fault != nil && r.Policy.Fault.Delay != nil }))
	var lat []time.Duration
	for range 10 {
		start := time.Now()
		if _, err := e.client.Greet(ctx, &greet.GreetRequest{Name: "delay"}); err != nil {
			t.Fatalf("%v; snapshot:%s", err, e.dump())
		}
		lat = append(lat, time.Since(start))
	}
	for _, l := range lat {
		if l < 200*time.Millisecond {
			t.Errorf("a call took %v under a 200ms delay fault", l)
		}
	}
	t.Logf("latency under the delay fault: %v", lat)
}

// A provider that fails one call in three is hidden by a retry policy.
func testRetries(ctx context.Context, t *testing.T, e *env) {
	// Without retries (Istio adds a default policy, attempts: 0 removes
	// it) the provider's failures show.
	e.apply(ctx, t, virtualService(`
  - retries: {attempts: 0}
    route:
    - destination: {host: greeter.default.svc.cluster.local, subset: v1}
`), func(s *mesh.Snapshot) bool {
		rs := s.Routes()
		return len(rs) == 1 && rs[0].Policy.Fault == nil && rs[0].Policy.Retry == nil
	})
	_, codes := e.tally(ctx, 30, &greet.GreetRequest{Name: "flaky"})
	if codes[triple.CodeUnavailable] == 0 {
		t.Fatalf("the flaky provider failed no call without a retry policy (%v); the test proves nothing", codes)
	}
	e.apply(ctx, t, virtualService(`
  - retries: {attempts: 3, perTryTimeout: 2s, retryOn: unavailable}
    route:
    - destination: {host: greeter.default.svc.cluster.local, subset: v1}
`), routeWith(func(r mesh.Route) bool { return r.Policy.Retry != nil && r.Policy.Retry.Attempts == 3 }))
	by, codes := e.tally(ctx, 300, &greet.GreetRequest{Name: "flaky"})
	if len(codes) > 0 || by["v1"] != 300 {
		t.Errorf("with retries: %v, failures %v; want all 300 to succeed", by, codes)
	}
}

// A route timeout of 100 ms cuts a 500 ms call with DEADLINE_EXCEEDED.
func testTimeout(ctx context.Context, t *testing.T, e *env) {
	e.apply(ctx, t, virtualService(`
  - timeout: 100ms
    route:
    - destination: {host: greeter.default.svc.cluster.local, subset: v1}
`), routeWith(func(r mesh.Route) bool { return r.Policy.Timeout == 100*time.Millisecond }))
	start := time.Now()
	_, err := e.client.Greet(ctx, &greet.GreetRequest{Name: "slow", SleepMs: 500})
	took := time.Since(start)
	if triple.CodeOf(err) != triple.CodeDeadlineExceeded {
		t.Fatalf("a 500ms call under a 100ms route timeout: %v, want DEADLINE_EXCEEDED; snapshot:%s", err, e.dump())
	}
	if took < 90*time.Millisecond || took > 400*time.Millisecond {
		t.Errorf("cut after %v, want about 100ms", took)
	}
	if _, err := e.client.Greet(ctx, &greet.GreetRequest{Name: "quick", SleepMs: 10}); err != nil {
		t.Errorf("a 10ms call under the 100ms timeout: %v", err)
	}
	t.Logf("the 500ms call was cut after %v", took.Round(time.Millisecond))
}

// An endpoint that keeps failing is ejected by outlier detection and comes
// back after the ejection time.
func testOutlier(ctx context.Context, t *testing.T, e *env) {
	// Both versions behind one route, round robin over the two Pods, no
	// retries so that failures are visible.
	e.apply(ctx, t, virtualService(`
  - retries: {attempts: 0}
    route:
    - destination: {host: greeter.default.svc.cluster.local}
`), func(s *mesh.Snapshot) bool {
		rs := s.Routes()
		return len(rs) == 1 && rs[0].Policy.Retry == nil && rs[0].Destinations[0].Subset == ""
	})
	broken := e.pods["v2"]
	setBroken(ctx, t, broken, true)
	t.Cleanup(func() { setBroken(context.Background(), t, broken, false) })
	// Three consecutive errors eject it (WithDefaultOutlierDetection above).
	_, codes := e.tally(ctx, 20, &greet.GreetRequest{Name: "outlier"})
	if n := codes[triple.CodeUnavailable]; n < 3 || n > 5 {
		t.Errorf("%d calls failed before the ejection (%v), want 3 to 5 (three consecutive errors on a round-robin pair)", n, codes)
	}
	// Ejected: the broken endpoint gets no call at all.
	before := calls(ctx, t, broken)
	by, codes := e.tally(ctx, 50, &greet.GreetRequest{Name: "outlier"})
	if len(codes) > 0 || by["v1"] != 50 {
		t.Errorf("after ejection: %v, failures %v; want all 50 on v1", by, codes)
	}
	if got := calls(ctx, t, broken) - before; got != 0 {
		t.Errorf("the ejected endpoint received %d calls", got)
	}
	setBroken(ctx, t, broken, false)
	// Back after the 2 s base ejection time.
	time.Sleep(2500 * time.Millisecond)
	by, codes = e.tally(ctx, 50, &greet.GreetRequest{Name: "outlier"})
	if len(codes) > 0 || by["v2"] == 0 {
		t.Errorf("after the ejection time: %v, failures %v; want v2 serving again", by, codes)
	}
	t.Logf("after the ejection time: %v", by)
}

func calls(ctx context.Context, t *testing.T, w *localmesh.Workload) int {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://%s/calls", w.Addr(8081)), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("admin /calls: %q", b)
	}
	return n
}

func setBroken(ctx context.Context, t *testing.T, w *localmesh.Workload, on bool) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, fmt.Sprintf("http://%s/broken?on=%v", w.Addr(8081), on), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("admin /broken: %s", resp.Status)
	}
}

// Consistent hash on a header pins each key to one endpoint.
func testConsistentHash(ctx context.Context, t *testing.T, e *env) {
	e.apply(ctx, t, `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: greeter, namespace: default}
spec:
  host: greeter.default.svc.cluster.local
  trafficPolicy:
    loadBalancer:
      consistentHash: {httpHeaderName: x-user}
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
`, func(s *mesh.Snapshot) bool {
		for _, c := range s.Clusters() {
			if lb := c.Policy().LoadBalancer; lb != nil && lb.ConsistentHash != nil {
				return true
			}
		}
		return false
	})
	seen := map[string]bool{}
	for k := range 20 {
		user := fmt.Sprintf("user-%d", k)
		by, codes := e.tally(ctx, 10, &greet.GreetRequest{Name: "hash"}, "x-user", user)
		if len(codes) > 0 || len(by) != 1 {
			t.Errorf("%s: %v, failures %v; want every call on one endpoint", user, by, codes)
		}
		for v := range by {
			seen[v] = true
		}
	}
	if len(seen) != 2 {
		t.Errorf("20 keys all landed on %v; want both endpoints used; snapshot:%s", seen, e.dump())
	}
}
