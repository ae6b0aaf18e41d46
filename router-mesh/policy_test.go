package routermesh

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shoalmesh/shoal/sdk/call"
	"github.com/shoalmesh/shoal/sdk/mesh"
	"github.com/shoalmesh/shoal/sdk/observer/observertest"
)

// The tests in this file drive DestinationRule policy (trafficPolicy and its
// per-subset overrides) through Invoke. Providers are in-process fakes: an
// Invoker that answers from a script or records where calls went.

var (
	errUnavailable = call.Errorf(call.Unavailable, "in-process fake provider: unavailable")
	errDeadline    = call.Errorf(call.DeadlineExceeded, "in-process fake provider: deadline exceeded")
	errInternal    = call.Errorf(call.Internal, "in-process fake provider: internal")
	errInvalid     = call.Errorf(call.InvalidArgument, "in-process fake provider: invalid argument")
	// errConnect is a call that never reached the provider, as a consumer
	// reports a refused connection.
	errConnect = &call.Error{Code: call.Unavailable, Connect: true, Message: "in-process fake dial: connection refused"}
)

// allEndpoints are the four endpoints of twoVersions, in order.
var allEndpoints = []string{"10.0.0.1:1", "10.0.0.2:1", "10.0.1.1:1", "10.0.1.2:1"}

// scriptedProviders is an in-process fake of a cluster's providers: each
// call to an address returns the next outcome of that address's script, and
// succeeds once the script is spent. It counts the calls per address.
type scriptedProviders struct {
	mu     sync.Mutex
	script map[string][]error
	calls  map[string]int
}

func newScripted(script map[string][]error) *scriptedProviders {
	return &scriptedProviders{script: script, calls: map[string]int{}}
}

func (s *scriptedProviders) invoke(_ context.Context, ep *mesh.Endpoint, _ *call.Info, _, _ any) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls[ep.Address]++
	q := s.script[ep.Address]
	if len(q) == 0 {
		return nil
	}
	s.script[ep.Address] = q[1:]
	return q[0]
}

// pending is the number of scripted outcomes not yet returned.
func (s *scriptedProviders) pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, q := range s.script {
		n += len(q)
	}
	return n
}

// drain makes calls until every script is spent (at most 200 calls).
func (s *scriptedProviders) drain(t *testing.T, r *Router, info *call.Info) {
	t.Helper()
	for i := 0; s.pending() > 0; i++ {
		if i == 200 {
			t.Fatalf("200 calls did not reach every scripted endpoint; calls so far %v", s.calls)
		}
		_ = r.Invoke(context.Background(), info, nil, nil, s.invoke)
	}
}

// addresses makes n calls and returns the endpoint each one went to.
func addresses(t *testing.T, r *Router, n int, att call.Attachments) []string {
	t.Helper()
	out := make([]string, 0, n)
	for range n {
		err := r.Invoke(context.Background(), greetCall(att), nil, nil, func(_ context.Context, ep *mesh.Endpoint, _ *call.Info, _, _ any) error {
			out = append(out, ep.Address)
			return nil
		})
		if err != nil {
			t.Fatalf("call %d: %v", len(out), err)
		}
	}
	return out
}

func tally(addrs []string) map[string]int {
	m := map[string]int{}
	for _, a := range addrs {
		m[a]++
	}
	return m
}

// isRotation reports whether addrs repeats one ordering of k distinct
// endpoints: every k consecutive picks are distinct and pick i+k is pick i.
func isRotation(addrs []string, k int) bool {
	for i := range addrs {
		if i+k < len(addrs) && addrs[i+k] != addrs[i] {
			return false
		}
		for j := i + 1; j < i+k && j < len(addrs); j++ {
			if addrs[j] == addrs[i] {
				return false
			}
		}
	}
	return true
}

// TestRetryBudget checks connectionPool.http.maxRetries: the retries in
// flight at once across all calls to a destination, as Envoy's retry circuit
// breaker counts them. A retry holds its place from its back-off until its
// attempt ends; a call that finds the budget spent returns its error.
func TestRetryBudget(t *testing.T) {
	retryOn, err := mesh.ParseRetryOn("unavailable")
	if err != nil {
		t.Fatal(err)
	}
	rt := split(100, 0)
	rt.Policy.Retry = &mesh.RetryPolicy{Attempts: 3, On: retryOn, Backoff: mesh.Backoff{Base: time.Microsecond}}
	policy := mesh.ClusterPolicy{ConnectionPool: &mesh.ConnectionPool{MaxRetries: 1}}
	r := newRouter(t, twoVersions(policy, rt))

	// Call A fails once and its retry hangs: the budget's one retry is in
	// flight.
	inRetry, release := make(chan struct{}), make(chan struct{})
	aDone := make(chan error, 1)
	go func() {
		attempts := 0
		aDone <- r.Invoke(context.Background(), greetCall(nil), nil, nil, func(context.Context, *mesh.Endpoint, *call.Info, any, any) error {
			attempts++
			if attempts == 1 {
				return errUnavailable
			}
			close(inRetry)
			<-release
			return nil
		})
	}()
	<-inRetry

	// Call B fails the same way meanwhile and may not retry.
	bAttempts := 0
	err = r.Invoke(context.Background(), greetCall(nil), nil, nil, func(context.Context, *mesh.Endpoint, *call.Info, any, any) error {
		bAttempts++
		return errUnavailable
	})
	if call.CodeOf(err) != call.Unavailable || bAttempts != 1 {
		t.Errorf("with the one allowed retry in flight: err=%v after %d attempts, want the first attempt's UNAVAILABLE after 1", err, bAttempts)
	}

	close(release)
	if err := <-aDone; err != nil {
		t.Fatalf("call A, whose retry held the budget: %v", err)
	}

	// With A done the budget is free again: C retries, and retries
	// one after another are not limited.
	cAttempts := 0
	err = r.Invoke(context.Background(), greetCall(nil), nil, nil, func(context.Context, *mesh.Endpoint, *call.Info, any, any) error {
		cAttempts++
		if cAttempts < 3 {
			return errUnavailable
		}
		return nil
	})
	if err != nil || cAttempts != 3 {
		t.Errorf("after the budget freed: err=%v after %d attempts, want success on the third", err, cAttempts)
	}
}

// TestRetryBudgetUnderConcurrency: however many calls fail at once, no more
// than maxRetries retry attempts are ever in progress together.
func TestRetryBudgetUnderConcurrency(t *testing.T) {
	retryOn, _ := mesh.ParseRetryOn("unavailable")
	rt := split(100, 0)
	rt.Policy.Retry = &mesh.RetryPolicy{Attempts: 2, On: retryOn, Backoff: mesh.Backoff{Base: time.Microsecond}}
	const budget = 2
	policy := mesh.ClusterPolicy{ConnectionPool: &mesh.ConnectionPool{MaxRetries: budget}}
	r := newRouter(t, twoVersions(policy, rt))

	var mu sync.Mutex
	inRetry, peak := 0, 0
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				attempt := 0
				_ = r.Invoke(context.Background(), greetCall(nil), nil, nil, func(context.Context, *mesh.Endpoint, *call.Info, any, any) error {
					attempt++
					if attempt == 1 {
						return errUnavailable
					}
					mu.Lock()
					inRetry++
					peak = max(peak, inRetry)
					mu.Unlock()
					time.Sleep(50 * time.Microsecond) // keep the retry in flight a while
					mu.Lock()
					inRetry--
					mu.Unlock()
					return nil
				})
			}
		})
	}
	wg.Wait()
	if peak > budget {
		t.Errorf("%d retry attempts ran at once, maxRetries allows %d", peak, budget)
	}
	if peak == 0 {
		t.Error("no call retried at all")
	}
}

// TestSubsetPolicyOverrides checks that a subset's trafficPolicy replaces
// the service's one block by block, in the router: v1 overrides outlier
// detection, v2 overrides the load balancer and the connection pool, and
// each keeps the service's other blocks.
func TestSubsetPolicyOverrides(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1000, 0)}
	spec := twoVersions(mesh.ClusterPolicy{
		LoadBalancer:     &mesh.LoadBalancer{Kind: mesh.LBRoundRobin},
		ConnectionPool:   &mesh.ConnectionPool{MaxRequests: 1},
		OutlierDetection: &mesh.OutlierDetection{Consecutive5xxErrors: 1, BaseEjectionTime: time.Minute, MaxEjectionPercent: 50},
	},
		mesh.Route{
			Name:         "to-v2",
			Matches:      []mesh.RouteMatch{{Headers: []mesh.HeaderMatch{{Name: "x-subset", Value: mesh.Exact("v2")}}}},
			Destinations: []mesh.WeightedDestination{{Destination: v2}},
		},
		split(100, 0),
	)
	spec.Services[0].Subsets[0].Policy = mesh.ClusterPolicy{
		OutlierDetection: &mesh.OutlierDetection{Consecutive5xxErrors: 3, BaseEjectionTime: time.Minute, MaxEjectionPercent: 50},
	}
	spec.Services[0].Subsets[1].Policy = mesh.ClusterPolicy{
		LoadBalancer:   &mesh.LoadBalancer{Kind: mesh.LBRingHash, ConsistentHash: &mesh.ConsistentHash{Source: mesh.HashHeader, Name: "x-user"}},
		ConnectionPool: &mesh.ConnectionPool{MaxRequests: 2},
	}
	r := newRouter(t, spec, WithClock(clock.Now))
	toV2 := call.Attachments{"x-subset": "v2"}

	t.Run("load balancer", func(t *testing.T) {
		// v1 keeps the service's round robin: an exact rotation.
		if got := addresses(t, r, 20, nil); !isRotation(got, 2) {
			t.Errorf("v1 picks %v, want the service's round robin", got)
		}
		// v2 uses its own ring hash: one key, one endpoint.
		for u := range 10 {
			att := call.Attachments{"x-subset": "v2", "x-user": fmt.Sprintf("user-%d", u)}
			if got := tally(addresses(t, r, 10, att)); len(got) != 1 {
				t.Errorf("user-%d went to %v, want one endpoint (the subset's ring hash)", u, got)
			}
		}
	})

	t.Run("connection pool", func(t *testing.T) {
		// held starts n calls on the destination att routes to and blocks
		// them until the returned function is called.
		hold := func(n int, att call.Attachments) func() {
			release, started := make(chan struct{}), make(chan struct{}, n)
			var wg sync.WaitGroup
			for range n {
				wg.Go(func() {
					_ = r.Invoke(context.Background(), greetCall(att), nil, nil, func(context.Context, *mesh.Endpoint, *call.Info, any, any) error {
						started <- struct{}{}
						<-release
						return nil
					})
				})
			}
			for range n {
				<-started
			}
			return func() { close(release); wg.Wait() }
		}
		ok := func(context.Context, *mesh.Endpoint, *call.Info, any, any) error { return nil }

		// v1 keeps the service's limit of 1.
		done := hold(1, nil)
		err := r.Invoke(context.Background(), greetCall(nil), nil, nil, ok)
		done()
		if call.CodeOf(err) != call.Unavailable || !strings.Contains(err.Error(), "allows 1") {
			t.Errorf("second concurrent v1 call: %v, want the service's circuit breaker (1)", err)
		}
		// v2 has its own limit of 2.
		done = hold(1, toV2)
		err = r.Invoke(context.Background(), greetCall(toV2), nil, nil, ok)
		done()
		if err != nil {
			t.Errorf("second concurrent v2 call: %v, want it admitted under the subset's limit (2)", err)
		}
		done = hold(2, toV2)
		err = r.Invoke(context.Background(), greetCall(toV2), nil, nil, ok)
		done()
		if call.CodeOf(err) != call.Unavailable || !strings.Contains(err.Error(), "allows 2") {
			t.Errorf("third concurrent v2 call: %v, want the subset's circuit breaker (2)", err)
		}
	})

	t.Run("outlier detection", func(t *testing.T) {
		// v2 keeps the service's detection: one 5xx ejects.
		p := newScripted(map[string][]error{"10.0.1.1:1": {errInternal}})
		p.drain(t, r, greetCall(call.Attachments{"x-subset": "v2"})) // no x-user: the ring spreads calls at random
		if !r.Ejected(v2, "10.0.1.1:1") {
			t.Error("v2 did not eject after one 5xx; it should keep the service's outlier detection")
		}
		// v1 has its own: two 5xx do not eject, the third does.
		p = newScripted(map[string][]error{"10.0.0.1:1": {errInternal, errInternal}})
		p.drain(t, r, greetCall(nil))
		if r.Ejected(v1, "10.0.0.1:1") {
			t.Error("v1 ejected after two 5xx; its own policy asks for 3")
		}
		p = newScripted(map[string][]error{"10.0.0.1:1": {errInternal}})
		p.drain(t, r, greetCall(nil))
		if !r.Ejected(v1, "10.0.0.1:1") {
			t.Error("v1 did not eject after three consecutive 5xx")
		}
	})
}

// TestOutlierErrorKinds runs outlier detection's counters through the
// router: consecutiveGatewayErrors, consecutive5xxErrors and, with
// splitExternalLocalOriginErrors, consecutiveLocalOriginFailures. One v1
// endpoint answers a script of outcomes; the test says whether it ends
// ejected.
func TestOutlierErrorKinds(t *testing.T) {
	const bad = "10.0.0.1:1"
	tests := []struct {
		name   string
		policy mesh.OutlierDetection
		script []error
		eject  bool
	}{
		{"gateway errors in a row eject", mesh.OutlierDetection{ConsecutiveGatewayErrors: 2}, []error{errUnavailable, errDeadline}, true},
		{"a non-gateway 5xx breaks a gateway run", mesh.OutlierDetection{ConsecutiveGatewayErrors: 2}, []error{errUnavailable, errInternal, errUnavailable, errInternal, errUnavailable}, false},
		{"non-gateway 5xx are no gateway errors", mesh.OutlierDetection{ConsecutiveGatewayErrors: 2}, []error{errInternal, errInternal, errInternal, errInternal}, false},
		{"a non-5xx failure breaks a gateway run", mesh.OutlierDetection{ConsecutiveGatewayErrors: 2}, []error{errUnavailable, errInvalid, errUnavailable}, false},
		{"a success breaks a gateway run", mesh.OutlierDetection{ConsecutiveGatewayErrors: 2}, []error{errUnavailable, nil, errUnavailable}, false},
		{"gateway errors are 5xx too", mesh.OutlierDetection{Consecutive5xxErrors: 3}, []error{errUnavailable, errInternal, errDeadline}, true},
		{"the lower of two counters ejects first", mesh.OutlierDetection{Consecutive5xxErrors: 5, ConsecutiveGatewayErrors: 2}, []error{errUnavailable, errUnavailable}, true},
		{"unsplit: connection failures are gateway errors", mesh.OutlierDetection{ConsecutiveGatewayErrors: 2}, []error{errConnect, errConnect}, true},
		{"unsplit: connection failures are 5xx", mesh.OutlierDetection{Consecutive5xxErrors: 2}, []error{errConnect, errUnavailable}, true},
		{"unsplit: the local-origin counter is unused", mesh.OutlierDetection{ConsecutiveLocalOriginFailures: 2}, []error{errConnect, errConnect, errConnect}, false},
		{
			"split: connection failures eject by the local-origin counter",
			mesh.OutlierDetection{SplitExternalLocalOriginErrors: true, ConsecutiveLocalOriginFailures: 2, Consecutive5xxErrors: 5, ConsecutiveGatewayErrors: 5},
			[]error{errConnect, errConnect},
			true,
		},
		{
			"split: connection failures are not 5xx",
			mesh.OutlierDetection{SplitExternalLocalOriginErrors: true, ConsecutiveLocalOriginFailures: 3, Consecutive5xxErrors: 2},
			[]error{errConnect, errUnavailable},
			false,
		},
		{
			"split: connection failures neither count nor break a 5xx run",
			mesh.OutlierDetection{SplitExternalLocalOriginErrors: true, ConsecutiveLocalOriginFailures: 3, Consecutive5xxErrors: 2},
			[]error{errInternal, errConnect, errInternal},
			true,
		},
		{
			"split: a 5xx answer breaks a local-origin run",
			mesh.OutlierDetection{SplitExternalLocalOriginErrors: true, ConsecutiveLocalOriginFailures: 2},
			[]error{errConnect, errInternal, errConnect},
			false,
		},
		{
			"split: any answer breaks a local-origin run",
			mesh.OutlierDetection{SplitExternalLocalOriginErrors: true, ConsecutiveLocalOriginFailures: 2},
			[]error{errConnect, errInvalid, errConnect},
			false,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := &fakeClock{now: time.Unix(1000, 0)}
			od := tt.policy
			od.BaseEjectionTime, od.MaxEjectionPercent = time.Minute, 50
			rec := observertest.NewRecorder()
			r := newRouter(t, twoVersions(mesh.ClusterPolicy{OutlierDetection: &od}, split(100, 0)), WithClock(clock.Now), WithObserver(rec))
			p := newScripted(map[string][]error{bad: tt.script})
			p.drain(t, r, greetCall(nil))
			if got := r.Ejected(v1, bad); got != tt.eject {
				t.Errorf("after %v: ejected = %v, want %v", tt.script, got, tt.eject)
			}
			want := 0
			if tt.eject {
				want = 1
			}
			if n := rec.Count("ejected " + v1.String() + " " + bad); n != want {
				t.Errorf("observer saw %d ejections of %s, want %d; all events %v", n, bad, want, rec.Counts())
			}
		})
	}
}

// TestOutlierMinHealthPercent checks minHealthPercent, Envoy's panic
// threshold: while enough endpoints stay healthy the ejected ones get no
// calls; below it detection steps aside and every endpoint gets calls.
func TestOutlierMinHealthPercent(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1000, 0)}
	od := mesh.OutlierDetection{Consecutive5xxErrors: 1, BaseEjectionTime: time.Minute, MaxEjectionPercent: 100, MinHealthPercent: 60}
	// No routes: calls go to the service, all four endpoints, round robin.
	r := newRouter(t, twoVersions(mesh.ClusterPolicy{OutlierDetection: &od}), WithClock(clock.Now))
	service := mesh.Destination{Service: svc}
	first, second := allEndpoints[0], allEndpoints[1]

	newScripted(map[string][]error{first: {errInternal}}).drain(t, r, greetCall(nil))
	if !r.Ejected(service, first) {
		t.Fatal("one 5xx did not eject")
	}
	// 3 of 4 healthy (75 %) is above 60 %: the ejected endpoint gets nothing,
	// the others share 12 calls in rotation.
	got := tally(addresses(t, r, 12, nil))
	if got[first] != 0 || got[allEndpoints[1]] != 4 || got[allEndpoints[2]] != 4 || got[allEndpoints[3]] != 4 {
		t.Errorf("with 75 %% healthy, calls went %v; want none to %s and 4 to each other", got, first)
	}

	newScripted(map[string][]error{second: {errInternal}}).drain(t, r, greetCall(nil))
	if !r.Ejected(service, second) {
		t.Fatal("the second endpoint's 5xx did not eject it")
	}
	// 2 of 4 (50 %) is below 60 %: all four share the calls again.
	got = tally(addresses(t, r, 12, nil))
	for _, a := range allEndpoints {
		if got[a] != 3 {
			t.Errorf("with 50 %% healthy, calls went %v; want 3 to each of the four (panic mode)", got)
			break
		}
	}
	if !r.Ejected(service, first) || !r.Ejected(service, second) {
		t.Error("panic mode cleared the ejections; it should only route around them")
	}

	// Without a threshold the same two ejections leave two endpoints.
	od.MinHealthPercent = 0
	r = newRouter(t, twoVersions(mesh.ClusterPolicy{OutlierDetection: &od}), WithClock(clock.Now))
	newScripted(map[string][]error{first: {errInternal}, second: {errInternal}}).drain(t, r, greetCall(nil))
	got = tally(addresses(t, r, 12, nil))
	if got[first] != 0 || got[second] != 0 || got[allEndpoints[2]] != 6 || got[allEndpoints[3]] != 6 {
		t.Errorf("minHealthPercent 0: calls went %v, want 6 to each of the two healthy endpoints", got)
	}
}

// TestLoadBalancerChoice checks that the router balances with the
// DestinationRule's loadBalancer, over the service's four endpoints.
func TestLoadBalancerChoice(t *testing.T) {
	lb := func(k mesh.LBKind) mesh.ClusterPolicy {
		return mesh.ClusterPolicy{LoadBalancer: &mesh.LoadBalancer{Kind: k}}
	}

	t.Run("round robin", func(t *testing.T) {
		for _, p := range []mesh.ClusterPolicy{lb(mesh.LBRoundRobin), {}} { // the default is round robin
			r := newRouter(t, twoVersions(p))
			if got := addresses(t, r, 40, nil); !isRotation(got, 4) {
				t.Errorf("%v: picks %v, want an exact rotation of the four endpoints", p.LoadBalancer, got)
			}
		}
	})

	t.Run("random", func(t *testing.T) {
		// 10,000 picks over 4 endpoints: each share has a standard
		// deviation of 0.43 points, so 25 +/- 2.2 is a 5-sigma tolerance.
		const n = 10000
		r := newRouter(t, twoVersions(lb(mesh.LBRandom)))
		got := addresses(t, r, n, nil)
		for a, c := range tally(got) {
			if share := float64(c) * 100 / n; share < 22.8 || share > 27.2 {
				t.Errorf("%s got %.1f %% of the calls, want 25 +/- 2.2", a, share)
			}
		}
		// Not a rotation: four picks in a row are all distinct with
		// probability 4!/4^4 (9 %), so some window of 10,000 repeats one.
		if isRotation(got, 4) {
			t.Error("random picks form an exact rotation: the router used round robin")
		}
		// Under the same seed a second router picks the same sequence.
		again := addresses(t, newRouter(t, twoVersions(lb(mesh.LBRandom))), n, nil)
		if strings.Join(got, ",") != strings.Join(again, ",") {
			t.Error("two random routers with the same seed picked different sequences")
		}
	})

	t.Run("least request", func(t *testing.T) {
		// One call holds an endpoint busy. Each pick compares two random
		// endpoints and takes the less loaded, so the busy one wins only
		// when both draws land on it: probability 1/16. Over 4,000 calls
		// its share has a standard deviation of 0.38 points; 6.25 +/- 2
		// is over 5 sigma, and round robin or random would give it 25 %.
		const n = 4000
		r := newRouter(t, twoVersions(lb(mesh.LBLeastRequest)))
		busy := make(chan string, 1)
		release := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() {
			_ = r.Invoke(context.Background(), greetCall(nil), nil, nil, func(_ context.Context, ep *mesh.Endpoint, _ *call.Info, _, _ any) error {
				busy <- ep.Address
				<-release
				return nil
			})
		})
		held := <-busy
		got := tally(addresses(t, r, n, nil))
		close(release)
		wg.Wait()
		if share := float64(got[held]) * 100 / n; share < 4.25 || share > 8.25 {
			t.Errorf("the busy endpoint got %.2f %% of the calls (%v), want 6.25 +/- 2", share, got)
		}
		// Once it is free again it takes its even share (25 +/- 3.5 over
		// 4,000 calls, where each share's deviation is 0.68 points).
		got = tally(addresses(t, r, n, nil))
		if share := float64(got[held]) * 100 / n; share < 21.5 || share > 28.5 {
			t.Errorf("the freed endpoint got %.1f %% of the calls, want 25 +/- 3.5", share)
		}
	})

	// Maglev has no balancer of its own here: it hashes with the ring.
	for _, kind := range []mesh.LBKind{mesh.LBRingHash, mesh.LBMaglev} {
		t.Run("consistent hash "+kind.String(), func(t *testing.T) {
			consistentHashSpreadsAndPins(t, kind)
		})
	}

	t.Run("change on update", func(t *testing.T) {
		r := newRouter(t, twoVersions(lb(mesh.LBRoundRobin)))
		if got := addresses(t, r, 40, nil); !isRotation(got, 4) {
			t.Fatalf("round robin picks %v", got)
		}
		snap, err := mesh.NewSnapshot(twoVersions(lb(mesh.LBRandom)))
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Update(snap); err != nil {
			t.Fatal(err)
		}
		// 400 random picks are a rotation with probability far below 1e-100.
		if got := addresses(t, r, 400, nil); isRotation(got, 4) {
			t.Error("after an update to RANDOM the router still rotates")
		}
	})
}

// consistentHashSpreadsAndPins checks a consistent-hash policy on the x-user
// header: each key sticks to one endpoint, and the keys spread over all four.
func consistentHashSpreadsAndPins(t *testing.T, kind mesh.LBKind) {
	r := newRouter(t, twoVersions(mesh.ClusterPolicy{LoadBalancer: &mesh.LoadBalancer{
		Kind: kind, ConsistentHash: &mesh.ConsistentHash{Source: mesh.HashHeader, Name: "x-user"},
	}}))
	owners := map[string]int{}
	for u := range 200 {
		att := call.Attachments{"x-user": fmt.Sprintf("user-%d", u)}
		got := tally(addresses(t, r, 5, att))
		if len(got) != 1 {
			t.Fatalf("user-%d went to %v, want one endpoint", u, got)
		}
		for a := range got {
			owners[a]++
		}
	}
	// The keys spread over the ring (1,024 entries for four endpoints,
	// built from the addresses, so the outcome does not depend on the
	// seed): each endpoint owns about a quarter of the keys, and at
	// least 10 % shows none is starved.
	for _, a := range allEndpoints {
		if owners[a] < 20 {
			t.Errorf("%s owns %d of 200 keys, want at least 20: %v", a, owners[a], owners)
		}
	}
}

// TestCircuitBreakerAcrossUpdates: a snapshot update while calls are in
// flight neither lifts the limit for them nor leaves their count behind
// once they end.
func TestCircuitBreakerAcrossUpdates(t *testing.T) {
	spec := twoVersions(mesh.ClusterPolicy{ConnectionPool: &mesh.ConnectionPool{MaxRequests: 1}}, split(100, 0))
	r := newRouter(t, spec)
	ok := func(context.Context, *mesh.Endpoint, *call.Info, any, any) error { return nil }
	update := func() {
		t.Helper()
		snap, err := mesh.NewSnapshot(spec)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Update(snap); err != nil {
			t.Fatal(err)
		}
	}

	started, release := make(chan struct{}), make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		_ = r.Invoke(context.Background(), greetCall(nil), nil, nil, func(context.Context, *mesh.Endpoint, *call.Info, any, any) error {
			close(started)
			<-release
			return nil
		})
	})
	<-started
	update()
	err := r.Invoke(context.Background(), greetCall(nil), nil, nil, ok)
	close(release)
	wg.Wait()
	if call.CodeOf(err) != call.Unavailable {
		t.Errorf("second call while the first was in flight across an update: %v, want the circuit breaker", err)
	}
	for i := range 3 {
		if err := r.Invoke(context.Background(), greetCall(nil), nil, nil, ok); err != nil {
			t.Fatalf("call %d after the in-flight call ended: %v; its count outlived it", i, err)
		}
		update()
	}
}
