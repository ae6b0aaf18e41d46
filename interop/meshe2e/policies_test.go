package meshe2e_test

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoalmesh/shoal/localmesh"
	"github.com/shoalmesh/shoal/proto/greet"
	"github.com/shoalmesh/shoal/proto/greet/greettriple"
	"github.com/shoalmesh/shoal/sdk/consumer"
	"github.com/shoalmesh/shoal/sdk/mesh"
	"github.com/shoalmesh/shoal/sdk/tri"
	"github.com/shoalmesh/shoal/triple"
)

// TestMeshPolicies checks through the real istiod what router-mesh's
// README promises beyond routing: a VirtualService timeout longer than
// the reference's default, circuit breaking from a DestinationRule, and
// request mirroring.
func TestMeshPolicies(t *testing.T) {
	ctx, e := meshTest(t)
	t.Run("RouteTimeoutOverReferenceDefault", func(t *testing.T) { testRouteTimeoutWins(ctx, t, e) })
	t.Run("CircuitBreaker", func(t *testing.T) { testCircuitBreaker(ctx, t, e) })
	t.Run("Mirror", func(t *testing.T) { testMirror(ctx, t, e) })
}

// A VirtualService timeout of 10 s lets a 5 s call finish on a reference
// whose own timeout is the 3 s default; without a route timeout the
// default cuts the same call.
func testRouteTimeoutWins(ctx context.Context, t *testing.T, e *env) {
	if consumer.DefaultTimeout != 3*time.Second {
		t.Fatalf("consumer.DefaultTimeout is %v; this test is written for 3s", consumer.DefaultTimeout)
	}
	ref := e.reference(t, nil) // the default timeout
	defer func() { _ = ref.Close() }()
	client := greettriple.NewGreetServiceClient(tri.NewClient(ref))

	e.rules(ctx, t, `
  - timeout: 10s
    route:
    - destination: {host: greeter.default.svc.cluster.local, subset: v1}
`, routeWith(func(r mesh.Route) bool { return r.Policy.Timeout == 10*time.Second }))
	start := time.Now()
	if _, err := client.Greet(ctx, &greet.GreetRequest{Name: "five", SleepMs: 5000}); err != nil {
		t.Fatalf("a 5s call under a 10s route timeout, reference default 3s: %v; snapshot:%s", err, e.dump())
	}
	t.Logf("the 5s call finished after %v", time.Since(start).Round(time.Millisecond))

	e.rules(ctx, t, `
  - route:
    - destination: {host: greeter.default.svc.cluster.local, subset: v1}
`, routeWith(func(r mesh.Route) bool { return r.Policy.Timeout == 0 && r.Policy.Fault == nil }))
	if _, err := client.Greet(ctx, &greet.GreetRequest{Name: "five", SleepMs: 5000}); triple.CodeOf(err) != triple.CodeDeadlineExceeded {
		t.Fatalf("a 5s call on a route without a timeout, reference default 3s: %v, want DEADLINE_EXCEEDED; snapshot:%s", err, e.dump())
	}
}

// DestinationRule http2MaxRequests: 3. With three calls in flight on the
// provider the fourth fails at once with UNAVAILABLE naming the limit,
// before any of the three ends; afterwards calls pass again.
func testCircuitBreaker(ctx context.Context, t *testing.T, e *env) {
	const limit = 3
	e.apply(ctx, t, `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: greeter, namespace: default}
spec:
  host: greeter.default.svc.cluster.local
  trafficPolicy:
    connectionPool:
      http: {http2MaxRequests: 3}
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
---`+virtualService(`
  - route:
    - destination: {host: greeter.default.svc.cluster.local, subset: v1}
`), func(s *mesh.Snapshot) bool {
		c, ok := s.Cluster(mesh.Destination{Service: clusterHost(s), Subset: "v1"})
		rs := s.Routes()
		return ok && c.Policy().ConnectionPool != nil && c.Policy().ConnectionPool.MaxRequests == limit &&
			len(rs) == 1 && rs[0].Policy.Fault == nil && rs[0].Policy.Timeout == 0
	})
	v1 := e.pods["v1"]
	before := calls(ctx, t, v1)
	var inFlight sync.WaitGroup
	var ended atomic.Int64
	errs := make(chan error, limit)
	for range limit {
		inFlight.Go(func() {
			_, err := e.client.Greet(ctx, &greet.GreetRequest{Name: "held", SleepMs: 3000})
			ended.Add(1)
			errs <- err
		})
	}
	// Wait until the provider holds all three (bounded: 200 x 25 ms).
	for i := 0; calls(ctx, t, v1)-before < limit; i++ {
		if i == 200 {
			t.Fatalf("the provider received %d of the %d held calls", calls(ctx, t, v1)-before, limit)
		}
		time.Sleep(25 * time.Millisecond)
	}
	_, err := e.client.Greet(ctx, &greet.GreetRequest{Name: "one too many"})
	endedBefore := ended.Load()
	inFlight.Wait()
	close(errs)
	if triple.CodeOf(err) != triple.CodeUnavailable || !strings.Contains(err.Error(), "http2MaxRequests") {
		t.Errorf("call %d with %d in flight: %v, want UNAVAILABLE naming http2MaxRequests", limit+1, limit, err)
	}
	if endedBefore != 0 {
		t.Errorf("%d held calls had ended when the extra call returned; it did not fail fast", endedBefore)
	}
	for err := range errs {
		if err != nil {
			t.Errorf("a held call: %v", err)
		}
	}
	if _, err := e.client.Greet(ctx, &greet.GreetRequest{Name: "after"}); err != nil {
		t.Errorf("a call after the held ones ended: %v", err)
	}
}

// clusterHost is the service name the snapshot's clusters carry.
func clusterHost(s *mesh.Snapshot) string {
	for _, c := range s.Clusters() {
		return c.Destination().Service
	}
	return ""
}

// Mirror 50 % of v1's calls to v2: v2 receives about half of them, every
// answer comes from v1, and a broken mirror fails no call.
func testMirror(ctx context.Context, t *testing.T, e *env) {
	e.rules(ctx, t, `
  - route:
    - destination: {host: greeter.default.svc.cluster.local, subset: v1}
    mirror: {host: greeter.default.svc.cluster.local, subset: v2}
    mirrorPercentage: {value: 50}
`, routeWith(func(r mesh.Route) bool { return len(r.Policy.Mirrors) == 1 && r.Policy.Mirrors[0].Subset == "v2" }))
	v2 := e.pods["v2"]
	const n = 600
	before := calls(ctx, t, v2)
	by, codes := e.tally(ctx, n, &greet.GreetRequest{Name: "mirrored"})
	if len(codes) > 0 || by["v1"] != n {
		t.Fatalf("mirrored calls: %v, failures %v; want all %d answered by v1; snapshot:%s", by, codes, n, e.dump())
	}
	got := settled(ctx, t, v2) - before
	// 600 calls at 50 %: standard deviation 2 points; tolerance 8 (4 sigma).
	if !within(got, n, 0.50, 0.08) {
		t.Errorf("v2 received %d mirrored calls of %d, want 50 +/- 8 %%", got, n)
	}
	t.Logf("v2 received %d mirrored calls of %d", got, n)

	setBroken(ctx, t, v2, true)
	defer setBroken(context.Background(), t, v2, false)
	before = calls(ctx, t, v2)
	by, codes = e.tally(ctx, 100, &greet.GreetRequest{Name: "mirrored"})
	if len(codes) > 0 || by["v1"] != 100 {
		t.Errorf("with the mirror failing every call: %v, failures %v; want all 100 answered by v1", by, codes)
	}
	if settled(ctx, t, v2) == before {
		t.Error("the broken mirror received no call; the test shows nothing")
	}
}

// settled reads w's call count until it stops changing (mirrors run after
// their calls return), within a bound of 100 reads 50 ms apart.
func settled(ctx context.Context, t *testing.T, w *localmesh.Workload) int {
	t.Helper()
	last := -1
	for range 100 {
		n := calls(ctx, t, w)
		if n == last {
			return n
		}
		last = n
		time.Sleep(50 * time.Millisecond)
	}
	return last
}
