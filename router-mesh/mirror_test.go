package routermesh

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/shoalmesh/shoal/sdk/call"
	"github.com/shoalmesh/shoal/sdk/mesh"
)

// TestMirrorToMissingDestinationKeepsTheCap mirrors 100 calls to a subset the
// snapshot lacks: no mirror can start, and the count of mirrors in flight
// must stay at 0 (it went to -100 when a refused mirror gave back a place it
// never took, so the cap grew by one per refused mirror).
func TestMirrorToMissingDestinationKeepsTheCap(t *testing.T) {
	rt := split(100, 0)
	rt.Policy.Mirrors = []mesh.Mirror{{Destination: mesh.Destination{Service: svc, Subset: "v3"}, Percentage: 100}}
	r := newRouter(t, twoVersions(mesh.ClusterPolicy{}, rt), WithMaxMirrors(1))
	for range 100 {
		if err := r.Invoke(context.Background(), greetCall(nil), nil, nil, func(context.Context, *mesh.Endpoint, *call.Info, any, any) error { return nil }); err != nil {
			t.Fatal(err)
		}
	}
	if n := r.inMirror.Load(); n != 0 {
		t.Fatalf("mirrors in flight after 100 refused mirrors: %d, want 0", n)
	}
}

// TestMirrorCapHoldsUnderLoad sends calls whose mirrors never finish until
// released: with a cap of 2, exactly 2 mirrors run, whatever was refused
// before.
func TestMirrorCapHoldsUnderLoad(t *testing.T) {
	missing := split(100, 0)
	missing.Matches = []mesh.RouteMatch{{Headers: []mesh.HeaderMatch{{Name: "x-missing", Value: mesh.Exact("1")}}}}
	missing.Policy.Mirrors = []mesh.Mirror{{Destination: mesh.Destination{Service: svc, Subset: "v3"}, Percentage: 100}}
	mirrored := split(100, 0)
	mirrored.Policy.Mirrors = []mesh.Mirror{{Destination: v2, Percentage: 100}}
	r := newRouter(t, twoVersions(mesh.ClusterPolicy{}, missing, mirrored), WithMaxMirrors(2))
	ok := func(context.Context, *mesh.Endpoint, *call.Info, any, any) error { return nil }
	for range 50 {
		if err := r.Invoke(context.Background(), greetCall(call.Attachments{"x-missing": "1"}), nil, nil, ok); err != nil {
			t.Fatal(err)
		}
	}
	release := make(chan struct{})
	var started atomic.Int64
	var running sync.WaitGroup
	running.Add(2)
	blocking := func(ctx context.Context, ep *mesh.Endpoint, _ *call.Info, _, _ any) error {
		if isV1(ep.Address) {
			return nil
		}
		if started.Add(1) <= 2 {
			running.Done()
		}
		select {
		case <-release:
		case <-ctx.Done():
		}
		return nil
	}
	for range 10 {
		if err := r.Invoke(context.Background(), greetCall(nil), nil, nil, blocking); err != nil {
			t.Fatal(err)
		}
	}
	running.Wait() // the two admitted mirrors are running; the other 8 were refused at Invoke
	close(release)
	r.mirrors.Wait()
	if n := started.Load(); n != 2 {
		t.Errorf("%d mirrors ran with a cap of 2", n)
	}
}

// TestNoMirrorAfterClose: a call after Close still runs, but starts no
// mirror (Close has waited for the mirrors; a new one would run unwatched
// and race the WaitGroup's Wait).
func TestNoMirrorAfterClose(t *testing.T) {
	rt := split(100, 0)
	rt.Policy.Mirrors = []mesh.Mirror{{Destination: v2, Percentage: 100}}
	r := newRouter(t, twoVersions(mesh.ClusterPolicy{}, rt))
	var mirrored atomic.Int64
	invoke := func(_ context.Context, ep *mesh.Endpoint, _ *call.Info, _, _ any) error {
		if !isV1(ep.Address) {
			mirrored.Add(1)
		}
		return nil
	}
	r.Close()
	if err := r.Invoke(context.Background(), greetCall(nil), nil, nil, invoke); err != nil {
		t.Fatal(err)
	}
	r.mirrors.Wait()
	if n := mirrored.Load(); n != 0 {
		t.Errorf("%d mirrors ran after Close", n)
	}
}

// TestCloseDuringMirroredCalls closes the router while calls that mirror run
// on other goroutines; under -race this caught WaitGroup.Add racing Wait.
func TestCloseDuringMirroredCalls(t *testing.T) {
	rt := split(100, 0)
	rt.Policy.Mirrors = []mesh.Mirror{{Destination: v2, Percentage: 100}}
	r := newRouter(t, twoVersions(mesh.ClusterPolicy{}, rt), WithMaxMirrors(1000))
	ok := func(context.Context, *mesh.Endpoint, *call.Info, any, any) error { return nil }
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 200 {
				_ = r.Invoke(context.Background(), greetCall(nil), nil, nil, ok)
			}
		})
	}
	r.Close()
	wg.Wait()
	r.mirrors.Wait()
	if n := r.inMirror.Load(); n != 0 {
		t.Errorf("mirrors in flight after everything ended: %d", n)
	}
}

// TestMirrorHasItsOwnMessages: the mirror is sent with its own copy of the
// request and decodes into its own response, so its answer never reaches
// the caller (before, the mirror wrote into the caller's response, after
// or while the caller read it).
func TestMirrorHasItsOwnMessages(t *testing.T) {
	rt := split(100, 0)
	rt.Policy.Mirrors = []mesh.Mirror{{Destination: v2, Percentage: 100}}
	r := newRouter(t, twoVersions(mesh.ClusterPolicy{}, rt))
	req := "hello"
	var resp string
	var mirrorSaw atomic.Value
	err := r.Invoke(context.Background(), greetCall(nil), req, &resp, func(_ context.Context, ep *mesh.Endpoint, _ *call.Info, req, resp any) error {
		out := resp.(*string)
		if isV1(ep.Address) {
			*out = "from v1"
			return nil
		}
		mirrorSaw.Store(req)
		*out = "from the mirror"
		return nil
	})
	r.Close() // waits for the mirror
	if err != nil || resp != "from v1" {
		t.Fatalf("caller's response %q, %v; want v1's answer only", resp, err)
	}
	if got := mirrorSaw.Load(); got != "hello" {
		t.Errorf("the mirror received %v, want the request", got)
	}
}
