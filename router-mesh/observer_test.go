package routermesh

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/shoalmesh/shoal/sdk/call"
	"github.com/shoalmesh/shoal/sdk/mesh"
	"github.com/shoalmesh/shoal/sdk/observer/observertest"
	"github.com/shoalmesh/shoal/sdk/router"
)

// The tests in this file check what the router reports to its observer
// (observertest's in-process fake) against what the calls went through;
// ejections are checked in TestOutlierErrorKinds.

// TestObserverCountsFaults: every injected delay and abort is reported
// once, and nothing else is: 1,000 calls at 30 % delay and 40 % abort.
func TestObserverCountsFaults(t *testing.T) {
	rt := split(100, 0)
	rt.Policy.Fault = &mesh.FaultPolicy{
		Delay: &mesh.FaultDelay{Fixed: 7 * time.Second, Percentage: 30},
		Abort: &mesh.FaultAbort{Code: call.ResourceExhausted, Percentage: 40},
	}
	delayed := 0
	rec := observertest.NewRecorder()
	r := newRouter(t, twoVersions(mesh.ClusterPolicy{}, rt), WithObserver(rec), optionFunc(func(c *config) {
		c.sleep = func(<-chan struct{}, time.Duration) bool { delayed++; return true }
	}))
	aborted := 0
	for range 1000 {
		if err := r.Invoke(context.Background(), greetCall(nil), nil, nil, noop); call.CodeOf(err) == call.ResourceExhausted {
			aborted++
		} else if err != nil {
			t.Fatal(err)
		}
	}
	if delayed == 0 || aborted == 0 {
		t.Fatalf("the seed gave %d delays and %d aborts; the test needs some of each", delayed, aborted)
	}
	if n := rec.Count("fault " + svc + " delay"); n != delayed {
		t.Errorf("observer saw %d delays, the calls were delayed %d times", n, delayed)
	}
	if n := rec.Count("fault " + svc + " abort"); n != aborted {
		t.Errorf("observer saw %d aborts, %d calls were aborted", n, aborted)
	}
	if n := len(rec.Counts()); n != 2 {
		t.Errorf("events besides the faults: %v", rec.Counts())
	}
}

// TestObserverCountsRetries: each retry is reported once against the
// destination (not the first try), and a retry the budget refuses is
// reported as a max_retries overflow, not as a retry.
func TestObserverCountsRetries(t *testing.T) {
	retryOn, err := mesh.ParseRetryOn("unavailable")
	if err != nil {
		t.Fatal(err)
	}
	rt := split(100, 0)
	rt.Policy.Retry = &mesh.RetryPolicy{Attempts: 3, On: retryOn, Backoff: mesh.Backoff{Base: time.Microsecond}}
	rec := observertest.NewRecorder()
	r := newRouter(t, twoVersions(mesh.ClusterPolicy{ConnectionPool: &mesh.ConnectionPool{MaxRetries: 1}}, rt), WithObserver(rec))

	// Five calls that succeed on their third try: two retries each.
	for range 5 {
		tries := 0
		err := r.Invoke(context.Background(), greetCall(nil), nil, nil, func(context.Context, *mesh.Endpoint, *call.Info, any, any) error {
			if tries++; tries < 3 {
				return errUnavailable
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := rec.Count("retry " + v1.String()); n != 10 {
		t.Errorf("observer saw %d retries, want 10; all events %v", n, rec.Counts())
	}

	// A's retry holds the only place in the budget while B fails.
	inRetry, release := make(chan struct{}), make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tries := 0
		_ = r.Invoke(context.Background(), greetCall(nil), nil, nil, func(context.Context, *mesh.Endpoint, *call.Info, any, any) error {
			if tries++; tries == 1 {
				return errUnavailable
			}
			close(inRetry)
			<-release
			return nil
		})
	})
	<-inRetry
	_ = r.Invoke(context.Background(), greetCall(nil), nil, nil, func(context.Context, *mesh.Endpoint, *call.Info, any, any) error {
		return errUnavailable
	})
	close(release)
	wg.Wait()
	if n := rec.Count("overflow " + v1.String() + " max_retries"); n != 1 {
		t.Errorf("observer saw %d retry overflows, want 1; all events %v", n, rec.Counts())
	}
	if n := rec.Count("retry " + v1.String()); n != 11 {
		t.Errorf("observer saw %d retries, want 11 (A's one more); all events %v", n, rec.Counts())
	}
}

// TestObserverCountsRequestOverflows: a call refused by http2MaxRequests
// is reported once; the admitted ones are not.
func TestObserverCountsRequestOverflows(t *testing.T) {
	rec := observertest.NewRecorder()
	r := newRouter(t, twoVersions(mesh.ClusterPolicy{ConnectionPool: &mesh.ConnectionPool{MaxRequests: 1}}, split(100, 0)), WithObserver(rec))
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
	refused := 0
	for range 3 {
		if err := r.Invoke(context.Background(), greetCall(nil), nil, nil, noop); call.CodeOf(err) == call.Unavailable {
			refused++
		}
	}
	close(release)
	wg.Wait()
	if err := r.Invoke(context.Background(), greetCall(nil), nil, nil, noop); err != nil {
		t.Fatal(err)
	}
	if n := rec.Count("overflow " + v1.String() + " max_requests"); refused != 3 || n != 3 {
		t.Errorf("%d calls refused, observer saw %d overflows; want 3 and 3 (all events %v)", refused, n, rec.Counts())
	}
}

// TestBuilderPassesTheObserver: the engine an app builds through
// router.BuildEngine reports to EngineOptions.Observer.
func TestBuilderPassesTheObserver(t *testing.T) {
	rt := split(100, 0)
	rt.Policy.Fault = &mesh.FaultPolicy{Abort: &mesh.FaultAbort{Code: call.Aborted, Percentage: 100}}
	snap, err := mesh.NewSnapshot(twoVersions(mesh.ClusterPolicy{}, rt))
	if err != nil {
		t.Fatal(err)
	}
	rec := observertest.NewRecorder()
	e := router.BuildEngine(Builder(WithSeed(1)), router.EngineOptions{Service: svc, Observer: rec})
	defer e.Close()
	if err := e.Update(snap); err != nil {
		t.Fatal(err)
	}
	if err := e.Invoke(context.Background(), greetCall(nil), nil, nil, noop); call.CodeOf(err) != call.Aborted {
		t.Fatalf("call: %v, want the injected abort", err)
	}
	if n := rec.Count("fault " + svc + " abort"); n != 1 {
		t.Errorf("observer saw %d aborts, want 1", n)
	}
}
