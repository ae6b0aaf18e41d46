package routermesh

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/shoalmesh/shoal/sdk/call"
	"github.com/shoalmesh/shoal/sdk/mesh"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const svc = "greet.GreetService"

var (
	v1 = mesh.Destination{Service: svc, Subset: "v1"}
	v2 = mesh.Destination{Service: svc, Subset: "v2"}
)

// twoVersions is a service with endpoints a1, a2 (version v1) and b1, b2 (v2).
func twoVersions(policy mesh.ClusterPolicy, routes ...mesh.Route) mesh.Spec {
	ep := func(addr, version string) mesh.Endpoint {
		return mesh.Endpoint{Address: addr, Labels: map[string]string{"version": version}}
	}
	return mesh.Spec{
		Revision: "test",
		Services: []mesh.Service{{
			Name:      svc,
			Endpoints: []mesh.Endpoint{ep("10.0.0.1:1", "v1"), ep("10.0.0.2:1", "v1"), ep("10.0.1.1:1", "v2"), ep("10.0.1.2:1", "v2")},
			Policy:    policy,
			Subsets: []mesh.Subset{
				{Name: "v1", Labels: map[string]string{"version": "v1"}},
				{Name: "v2", Labels: map[string]string{"version": "v2"}},
			},
		}},
		Routes: routes,
	}
}

func newRouter(t *testing.T, spec mesh.Spec, opts ...Option) *Router {
	t.Helper()
	snap, err := mesh.NewSnapshot(spec)
	if err != nil {
		t.Fatalf("NewSnapshot: %v", err)
	}
	r := New(append([]Option{WithSeed(42), WithLogger(slog.New(slog.DiscardHandler))}, opts...)...)
	t.Cleanup(r.Close)
	if err := r.Update(snap); err != nil {
		t.Fatalf("Update: %v", err)
	}
	return r
}

func greetCall(att call.Attachments) *call.Info {
	return &call.Info{Service: svc, Method: "Greet", Attachments: att}
}

func isV1(addr string) bool { return strings.HasPrefix(addr, "10.0.0.") }

// countVersions makes n calls and counts those served by v1 endpoints.
func countVersions(t *testing.T, r *Router, n int, att call.Attachments) (v1Calls, failed int) {
	t.Helper()
	for range n {
		err := r.Invoke(context.Background(), greetCall(att), nil, nil, func(_ context.Context, ep *mesh.Endpoint, _ *call.Info, _, _ any) error {
			if isV1(ep.Address) {
				v1Calls++
			}
			return nil
		})
		if err != nil {
			failed++
		}
	}
	return v1Calls, failed
}

func split(w1, w2 uint32) mesh.Route {
	return mesh.Route{Name: "split", Destinations: []mesh.WeightedDestination{{Destination: v1, Weight: w1}, {Destination: v2, Weight: w2}}}
}

func TestWeightedSplit(t *testing.T) {
	// 10,000 calls at 80/20: the v1 share has a standard deviation of 0.4
	// points, so 80 +/- 2 is a 5-sigma tolerance.
	r := newRouter(t, twoVersions(mesh.ClusterPolicy{}, split(80, 20)))
	got, failed := countVersions(t, r, 10000, nil)
	if failed != 0 {
		t.Fatalf("%d calls failed", failed)
	}
	if share := float64(got) / 100; share < 78 || share > 82 {
		t.Errorf("v1 share = %.1f%%, want 80 +/- 2", share)
	}

	// The split follows an update at once.
	snap, err := mesh.NewSnapshot(twoVersions(mesh.ClusterPolicy{}, split(50, 50)))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Update(snap); err != nil {
		t.Fatal(err)
	}
	got, _ = countVersions(t, r, 10000, nil)
	if share := float64(got) / 100; share < 47.5 || share > 52.5 {
		t.Errorf("after update: v1 share = %.1f%%, want 50 +/- 2.5", share)
	}
}

func TestDeterministicUnderSeed(t *testing.T) {
	spec := twoVersions(mesh.ClusterPolicy{}, split(50, 50))
	seq := func() string {
		r := newRouter(t, spec)
		var b strings.Builder
		for range 64 {
			_ = r.Invoke(context.Background(), greetCall(nil), nil, nil, func(_ context.Context, ep *mesh.Endpoint, _ *call.Info, _, _ any) error {
				b.WriteString(ep.Address)
				return nil
			})
		}
		return b.String()
	}
	if a, b := seq(), seq(); a != b {
		t.Error("two routers with the same seed chose different endpoints for the same calls")
	}
}

func TestHeaderMatchSendsTaggedCallsToV2(t *testing.T) {
	tagged := mesh.Route{
		Name:         "canary",
		Matches:      []mesh.RouteMatch{{Headers: []mesh.HeaderMatch{{Name: "x-canary", Value: mesh.Exact("yes")}}}},
		Destinations: []mesh.WeightedDestination{{Destination: v2}},
	}
	r := newRouter(t, twoVersions(mesh.ClusterPolicy{}, tagged, split(100, 0)))
	if got, _ := countVersions(t, r, 500, call.Attachments{"x-canary": "yes"}); got != 0 {
		t.Errorf("%d of 500 tagged calls reached v1, want 0", got)
	}
	if got, _ := countVersions(t, r, 500, nil); got != 500 {
		t.Errorf("%d of 500 untagged calls reached v1, want 500", got)
	}
}

func TestNoMatchingRoute(t *testing.T) {
	only := mesh.Route{
		Name:         "only-bye",
		Matches:      []mesh.RouteMatch{{Path: mesh.Exact("/greet.GreetService/Bye")}},
		Destinations: []mesh.WeightedDestination{{Destination: v1}},
	}
	r := newRouter(t, twoVersions(mesh.ClusterPolicy{}, only))
	err := r.Invoke(context.Background(), greetCall(nil), nil, nil, func(context.Context, *mesh.Endpoint, *call.Info, any, any) error { return nil })
	if call.CodeOf(err) != call.Unimplemented {
		t.Fatalf("err = %v, want UNIMPLEMENTED for a call no route matches", err)
	}
}

func TestNoStateYet(t *testing.T) {
	r := New()
	defer r.Close()
	err := r.Invoke(context.Background(), greetCall(nil), nil, nil, func(context.Context, *mesh.Endpoint, *call.Info, any, any) error { return nil })
	if call.CodeOf(err) != call.Unavailable {
		t.Fatalf("err = %v, want UNAVAILABLE before the first snapshot", err)
	}
	if err := r.Update(nil); err == nil {
		t.Error("Update(nil) succeeded")
	}
}

func TestFaultAbort(t *testing.T) {
	// 10,000 calls, abort 50%: standard deviation 0.5 points, tolerance 2.5.
	rt := split(100, 0)
	rt.Policy.Fault = &mesh.FaultPolicy{Abort: &mesh.FaultAbort{Code: call.Unavailable, Percentage: 50}}
	r := newRouter(t, twoVersions(mesh.ClusterPolicy{}, rt))
	aborted, reached := 0, 0
	for range 10000 {
		err := r.Invoke(context.Background(), greetCall(nil), nil, nil, func(context.Context, *mesh.Endpoint, *call.Info, any, any) error {
			reached++
			return nil
		})
		if err != nil {
			if call.CodeOf(err) != call.Unavailable {
				t.Fatalf("aborted with %v, want UNAVAILABLE", err)
			}
			aborted++
		}
	}
	if share := float64(aborted) / 100; share < 47.5 || share > 52.5 {
		t.Errorf("aborted %.1f%%, want 50 +/- 2.5", share)
	}
	if aborted+reached != 10000 {
		t.Errorf("aborted %d + reached %d != 10000: an aborted call reached a provider", aborted, reached)
	}
}

func TestFaultAbortHTTPStatus(t *testing.T) {
	rt := split(100, 0)
	rt.Policy.Fault = &mesh.FaultPolicy{Abort: &mesh.FaultAbort{HTTPStatus: 503, Percentage: 100}}
	r := newRouter(t, twoVersions(mesh.ClusterPolicy{}, rt))
	err := r.Invoke(context.Background(), greetCall(nil), nil, nil, func(context.Context, *mesh.Endpoint, *call.Info, any, any) error { return nil })
	if call.CodeOf(err) != call.Unavailable {
		t.Fatalf("err = %v, want UNAVAILABLE for an HTTP 503 abort", err)
	}
}

func TestFaultDelay(t *testing.T) {
	rt := split(100, 0)
	rt.Policy.Fault = &mesh.FaultPolicy{Delay: &mesh.FaultDelay{Fixed: 30 * time.Millisecond, Percentage: 100}}
	r := newRouter(t, twoVersions(mesh.ClusterPolicy{}, rt))
	start := time.Now()
	if err := r.Invoke(context.Background(), greetCall(nil), nil, nil, func(context.Context, *mesh.Endpoint, *call.Info, any, any) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 30*time.Millisecond {
		t.Errorf("call took %v, want at least the injected 30ms", d)
	}

	// A delay longer than the caller's deadline ends with the deadline.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
	defer cancel()
	rt.Policy.Fault.Delay.Fixed = time.Minute
	r = newRouter(t, twoVersions(mesh.ClusterPolicy{}, rt))
	err := r.Invoke(ctx, greetCall(nil), nil, nil, func(context.Context, *mesh.Endpoint, *call.Info, any, any) error { return nil })
	if call.CodeOf(err) != call.DeadlineExceeded {
		t.Fatalf("err = %v, want DEADLINE_EXCEEDED", err)
	}
}

func TestRetriesHideIntermittentFailures(t *testing.T) {
	retryOn, err := mesh.ParseRetryOn("unavailable")
	if err != nil {
		t.Fatal(err)
	}
	flaky := func() Invoker {
		var n atomic.Int64
		return func(context.Context, *mesh.Endpoint, *call.Info, any, any) error {
			if n.Add(1)%3 == 0 { // every third attempt fails
				return call.Errorf(call.Unavailable, "flaky provider")
			}
			return nil
		}
	}
	run := func(r *Router) (failed int) {
		inv := flaky()
		for range 300 {
			if r.Invoke(context.Background(), greetCall(nil), nil, nil, inv) != nil {
				failed++
			}
		}
		return failed
	}
	if failed := run(newRouter(t, twoVersions(mesh.ClusterPolicy{}, split(100, 0)))); failed != 100 {
		t.Fatalf("without retries %d of 300 calls failed, want 100 (the flaky provider is broken)", failed)
	}
	rt := split(100, 0)
	rt.Policy.Retry = &mesh.RetryPolicy{Attempts: 2, On: retryOn, Backoff: mesh.Backoff{Base: time.Millisecond, Max: 2 * time.Millisecond}}
	if failed := run(newRouter(t, twoVersions(mesh.ClusterPolicy{}, rt))); failed != 0 {
		t.Fatalf("with 2 retries on unavailable %d of 300 calls failed, want 0", failed)
	}
}

func TestRetryAvoidsTriedEndpointAndStopsOnOtherCodes(t *testing.T) {
	retryOn, _ := mesh.ParseRetryOn("unavailable")
	rt := split(100, 0)
	rt.Policy.Retry = &mesh.RetryPolicy{Attempts: 3, On: retryOn, Backoff: mesh.Backoff{Base: time.Microsecond}}
	r := newRouter(t, twoVersions(mesh.ClusterPolicy{}, rt))
	var seen []string
	err := r.Invoke(context.Background(), greetCall(nil), nil, nil, func(_ context.Context, ep *mesh.Endpoint, _ *call.Info, _, _ any) error {
		seen = append(seen, ep.Address)
		if len(seen) == 1 {
			return call.Errorf(call.Unavailable, "first endpoint down")
		}
		return nil
	})
	if err != nil || len(seen) != 2 || seen[0] == seen[1] {
		t.Fatalf("err=%v attempts=%v: want a retry on the other v1 endpoint", err, seen)
	}
	attempts := 0
	err = r.Invoke(context.Background(), greetCall(nil), nil, nil, func(context.Context, *mesh.Endpoint, *call.Info, any, any) error {
		attempts++
		return call.Errorf(call.InvalidArgument, "bad request")
	})
	if call.CodeOf(err) != call.InvalidArgument || attempts != 1 {
		t.Fatalf("err=%v attempts=%d: a non-retryable code must not be retried", err, attempts)
	}
}

// bounded is ctx bounded by info.Deadline, as the consumer bounds a try
// (an Invoker ends its try at info.Deadline).
func bounded(ctx context.Context, info *call.Info) (context.Context, context.CancelFunc) {
	if info.Deadline.IsZero() {
		return context.WithCancel(ctx)
	}
	return context.WithDeadline(ctx, info.Deadline)
}

func TestRouteTimeout(t *testing.T) {
	rt := split(100, 0)
	rt.Policy.Timeout = 100 * time.Millisecond
	r := newRouter(t, twoVersions(mesh.ClusterPolicy{}, rt))
	start := time.Now()
	err := r.Invoke(context.Background(), greetCall(nil), nil, nil, func(ctx context.Context, _ *mesh.Endpoint, info *call.Info, _, _ any) error {
		ctx, cancel := bounded(ctx, info)
		defer cancel()
		select { // a 500 ms call
		case <-time.After(500 * time.Millisecond):
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	if call.CodeOf(err) != call.DeadlineExceeded {
		t.Fatalf("err = %v, want DEADLINE_EXCEEDED", err)
	}
	if d := time.Since(start); d > 400*time.Millisecond {
		t.Errorf("the call took %v; the 100ms route timeout did not cut it", d)
	}
}

func TestPerTryTimeoutRetries(t *testing.T) {
	retryOn, _ := mesh.ParseRetryOn("5xx")
	rt := split(100, 0)
	rt.Policy.Retry = &mesh.RetryPolicy{Attempts: 1, PerTryTimeout: 20 * time.Millisecond, On: retryOn, Backoff: mesh.Backoff{Base: time.Microsecond}}
	r := newRouter(t, twoVersions(mesh.ClusterPolicy{}, rt))
	attempts := 0
	err := r.Invoke(context.Background(), greetCall(nil), nil, nil, func(ctx context.Context, _ *mesh.Endpoint, _ *call.Info, _, _ any) error {
		attempts++
		if attempts == 1 {
			<-ctx.Done() // hangs until the per-try timeout
			return ctx.Err()
		}
		return nil
	})
	if err != nil || attempts != 2 {
		t.Fatalf("err=%v attempts=%d: want the hung first try cut and retried", err, attempts)
	}
}

// fakeClock is a settable clock for ejection times.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func TestOutlierDetectionEjectsAndReturns(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1000, 0)}
	policy := mesh.ClusterPolicy{OutlierDetection: &mesh.OutlierDetection{
		Consecutive5xxErrors: 3, BaseEjectionTime: time.Second, MaxEjectionPercent: 50,
	}}
	r := newRouter(t, twoVersions(policy, split(100, 0)), WithClock(clock.Now))
	const bad = "10.0.0.1:1"
	calls := map[string]int{}
	inv := func(_ context.Context, ep *mesh.Endpoint, _ *call.Info, _, _ any) error {
		calls[ep.Address]++
		if ep.Address == bad {
			return call.Errorf(call.Unavailable, "broken endpoint")
		}
		return nil
	}
	for range 20 {
		_ = r.Invoke(context.Background(), greetCall(nil), nil, nil, inv)
	}
	if calls[bad] != 3 {
		t.Errorf("the failing endpoint got %d calls, want exactly 3 before its ejection", calls[bad])
	}
	if !r.Ejected(v1, bad) {
		t.Fatal("the failing endpoint is not ejected after 3 consecutive errors")
	}
	clear(calls)
	for range 10 {
		if err := r.Invoke(context.Background(), greetCall(nil), nil, nil, inv); err != nil {
			t.Fatalf("call during ejection failed: %v", err)
		}
	}
	if calls[bad] != 0 {
		t.Errorf("the ejected endpoint got %d calls", calls[bad])
	}

	clock.Add(1100 * time.Millisecond) // past the base ejection time
	clear(calls)
	for range 10 {
		_ = r.Invoke(context.Background(), greetCall(nil), nil, nil, inv)
	}
	if calls[bad] == 0 {
		t.Error("the endpoint did not come back after its ejection time")
	}
	// Ejected again: for twice the base time now.
	if !r.Ejected(v1, bad) {
		t.Fatal("the still-failing endpoint was not ejected again")
	}
	clock.Add(1500 * time.Millisecond)
	if !r.Ejected(v1, bad) {
		t.Error("the second ejection did not last twice the base ejection time")
	}
}

func TestOutlierMaxEjectionPercent(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1000, 0)}
	policy := mesh.ClusterPolicy{OutlierDetection: &mesh.OutlierDetection{
		Consecutive5xxErrors: 1, BaseEjectionTime: time.Minute, MaxEjectionPercent: 10,
	}}
	r := newRouter(t, twoVersions(policy, split(100, 0)), WithClock(clock.Now))
	for range 10 {
		_ = r.Invoke(context.Background(), greetCall(nil), nil, nil, func(context.Context, *mesh.Endpoint, *call.Info, any, any) error {
			return call.Errorf(call.Internal, "everything is broken")
		})
	}
	ejected := 0
	for _, a := range []string{"10.0.0.1:1", "10.0.0.2:1"} {
		if r.Ejected(v1, a) {
			ejected++
		}
	}
	// 10% of two endpoints rounds to none, but Envoy always allows one.
	if ejected != 1 {
		t.Errorf("%d endpoints ejected, want 1", ejected)
	}
}

func TestCircuitBreaker(t *testing.T) {
	policy := mesh.ClusterPolicy{ConnectionPool: &mesh.ConnectionPool{MaxRequests: 2}}
	r := newRouter(t, twoVersions(policy, split(100, 0)))
	release := make(chan struct{})
	started := make(chan struct{}, 2)
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			_ = r.Invoke(context.Background(), greetCall(nil), nil, nil, func(context.Context, *mesh.Endpoint, *call.Info, any, any) error {
				started <- struct{}{}
				<-release
				return nil
			})
		})
	}
	<-started
	<-started
	err := r.Invoke(context.Background(), greetCall(nil), nil, nil, func(context.Context, *mesh.Endpoint, *call.Info, any, any) error { return nil })
	close(release)
	wg.Wait()
	if call.CodeOf(err) != call.Unavailable || !strings.Contains(err.Error(), "circuit breaker") {
		t.Fatalf("third concurrent call: %v, want UNAVAILABLE naming the circuit breaker", err)
	}
	if err := r.Invoke(context.Background(), greetCall(nil), nil, nil, func(context.Context, *mesh.Endpoint, *call.Info, any, any) error { return nil }); err != nil {
		t.Fatalf("after the others finished: %v", err)
	}
}

func TestConsistentHashPinsKeys(t *testing.T) {
	policy := mesh.ClusterPolicy{LoadBalancer: &mesh.LoadBalancer{
		Kind: mesh.LBRingHash, ConsistentHash: &mesh.ConsistentHash{Source: mesh.HashHeader, Name: "x-user"},
	}}
	r := newRouter(t, twoVersions(policy))
	for u := range 50 {
		att := call.Attachments{"x-user": fmt.Sprintf("user-%d", u)}
		first := ""
		for range 20 {
			_ = r.Invoke(context.Background(), greetCall(att), nil, nil, func(_ context.Context, ep *mesh.Endpoint, _ *call.Info, _, _ any) error {
				if first == "" {
					first = ep.Address
				} else if ep.Address != first {
					t.Errorf("user-%d went to %s and to %s", u, first, ep.Address)
				}
				return nil
			})
		}
	}
}

func TestHeaderOperations(t *testing.T) {
	rt := split(100, 0)
	rt.Policy.RequestHeaders = mesh.HeaderOps{Set: map[string]string{"x-route": "split"}, Remove: []string{"x-secret"}}
	rt.Destinations[0].RequestHeaders = mesh.HeaderOps{Add: map[string]string{"x-subset": "v1"}}
	r := newRouter(t, twoVersions(mesh.ClusterPolicy{}, rt))
	in := call.Attachments{"x-secret": "s", "x-keep": "k"}
	var got call.Attachments
	if err := r.Invoke(context.Background(), greetCall(in), nil, nil, func(_ context.Context, _ *mesh.Endpoint, info *call.Info, _, _ any) error {
		got = info.Attachments
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if got["x-route"] != "split" || got["x-subset"] != "v1" || got["x-keep"] != "k" || got["x-secret"] != "" {
		t.Errorf("attachments sent = %v", got)
	}
	if in["x-route"] != "" || in["x-secret"] != "s" {
		t.Errorf("the caller's attachments were modified: %v", in)
	}
}

func TestMirror(t *testing.T) {
	rt := split(100, 0)
	rt.Policy.Mirrors = []mesh.Mirror{{Destination: v2, Percentage: 100}}
	r := newRouter(t, twoVersions(mesh.ClusterPolicy{}, rt))
	var mirrored atomic.Int64
	for range 20 {
		err := r.Invoke(context.Background(), greetCall(nil), nil, nil, func(_ context.Context, ep *mesh.Endpoint, _ *call.Info, _, _ any) error {
			if !isV1(ep.Address) {
				mirrored.Add(1)
				return errors.New("mirror results are ignored")
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	r.Close() // waits for the mirrors
	if got := mirrored.Load(); got != 20 {
		t.Errorf("%d calls mirrored to v2, want 20", got)
	}
}

func TestUpdatesDoNotBlockCalls(t *testing.T) {
	r := newRouter(t, twoVersions(mesh.ClusterPolicy{}, split(50, 50)))
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	var wg sync.WaitGroup
	var calls atomic.Int64
	for range 4 {
		wg.Go(func() {
			for ctx.Err() == nil {
				if err := r.Invoke(context.Background(), greetCall(nil), nil, nil, func(context.Context, *mesh.Endpoint, *call.Info, any, any) error { return nil }); err != nil {
					t.Error(err)
					return
				}
				calls.Add(1)
			}
		})
	}
	for i := 0; ctx.Err() == nil && i < 1000; i++ {
		snap, err := mesh.NewSnapshot(twoVersions(mesh.ClusterPolicy{}, split(uint32(i%100), 100-uint32(i%100))))
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Update(snap); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	if calls.Load() == 0 {
		t.Fatal("no call completed while updates ran")
	}
}

func TestBuilderMakesEngines(t *testing.T) {
	b := Builder(WithSeed(7))
	if b.Name() != "mesh" {
		t.Fatalf("name %q", b.Name())
	}
	e := b.Build()
	defer e.Close()
	snap, err := mesh.NewSnapshot(twoVersions(mesh.ClusterPolicy{}, split(100, 0)))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Update(snap); err != nil {
		t.Fatal(err)
	}
	var got string
	if err := e.Invoke(context.Background(), greetCall(nil), nil, nil, func(_ context.Context, ep *mesh.Endpoint, _ *call.Info, _, _ any) error {
		got = ep.Address
		return nil
	}); err != nil || !isV1(got) {
		t.Fatalf("engine call went to %q: %v", got, err)
	}
}

// A cluster whose policy carries no outlier detection (what istiod's grpc
// generator sends) uses WithDefaultOutlierDetection; one that carries its own
// keeps it.
func TestDefaultOutlierDetection(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1000, 0)}
	def := mesh.OutlierDetection{Consecutive5xxErrors: 2, BaseEjectionTime: time.Second, MaxEjectionPercent: 50}
	const bad = "10.0.0.1:1"
	failBad := func(_ context.Context, ep *mesh.Endpoint, _ *call.Info, _, _ any) error {
		if ep.Address == bad {
			return call.Errorf(call.Unavailable, "broken endpoint")
		}
		return nil
	}
	r := newRouter(t, twoVersions(mesh.ClusterPolicy{}, split(100, 0)), WithClock(clock.Now), WithDefaultOutlierDetection(def))
	for range 10 {
		_ = r.Invoke(context.Background(), greetCall(nil), nil, nil, failBad)
	}
	if !r.Ejected(v1, bad) {
		t.Fatal("the default outlier detection did not eject the failing endpoint")
	}

	// The cluster's own policy wins: 5 consecutive errors, not 2.
	own := mesh.ClusterPolicy{OutlierDetection: &mesh.OutlierDetection{Consecutive5xxErrors: 5, BaseEjectionTime: time.Second, MaxEjectionPercent: 50}}
	r = newRouter(t, twoVersions(own, split(100, 0)), WithClock(clock.Now), WithDefaultOutlierDetection(def))
	calls := 0
	for range 6 {
		_ = r.Invoke(context.Background(), greetCall(nil), nil, nil, func(ctx context.Context, ep *mesh.Endpoint, ci *call.Info, _, _ any) error {
			if ep.Address == bad {
				calls++
			}
			return failBad(ctx, ep, ci, nil, nil)
		})
	}
	if calls < 3 || r.Ejected(v1, bad) {
		t.Fatalf("after %d consecutive errors the endpoint is ejected=%v; the cluster's policy (5) must win over the default (2)", calls, r.Ejected(v1, bad))
	}
}
