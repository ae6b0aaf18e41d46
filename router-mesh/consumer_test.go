package routermesh_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	routermesh "github.com/shoalmesh/shoal/router-mesh"
	"github.com/shoalmesh/shoal/sdk/call"
	"github.com/shoalmesh/shoal/sdk/consumer"
	"github.com/shoalmesh/shoal/sdk/filter"
	"github.com/shoalmesh/shoal/sdk/mesh"
	"github.com/shoalmesh/shoal/sdk/registry"
)

// These tests run the engine behind a real consumer.Reference, as an
// application does, over an in-process fake network (fakeNet): a test
// endpoint answers with its own address, unary or streamed.

const (
	target = "xds:///greeter.default.svc.cluster.local:20000"
	host   = "outbound|20000||greeter.default.svc.cluster.local"
	method = "/greet.GreetService/Greet"
)

// fakeNet is an in-process fake of the provider side. takes is how long a
// call "takes": a call whose deadline leaves less fails with
// DEADLINE_EXCEEDED at once, as a real call would after waiting, without
// the test sleeping.
type fakeNet struct {
	takes time.Duration

	mu      sync.Mutex
	streams map[string]int // opened, by address
}

func (n *fakeNet) Dial(_ context.Context, ep *mesh.Endpoint) (consumer.Conn, error) {
	return &fakeConn{net: n, addr: ep.Address}, nil
}

type fakeConn struct {
	net  *fakeNet
	addr string
}

func (c *fakeConn) deadlineExceeded(ctx context.Context, info *call.Info) bool {
	if c.net.takes == 0 {
		return false
	}
	end := time.Now().Add(c.net.takes)
	if dl, ok := ctx.Deadline(); ok && dl.Before(end) {
		return true
	}
	return !info.Deadline.IsZero() && info.Deadline.Before(end)
}

func (c *fakeConn) Invoke(ctx context.Context, info *call.Info, _, resp any) error {
	if c.deadlineExceeded(ctx, info) {
		return call.Errorf(call.DeadlineExceeded, "the call takes %s; its deadline came first", c.net.takes)
	}
	if p, ok := resp.(*string); ok {
		*p = c.addr
	}
	return nil
}

func (c *fakeConn) NewStream(ctx context.Context, _ *call.Info) (filter.ClientStream, error) {
	c.net.mu.Lock()
	c.net.streams[c.addr]++
	c.net.mu.Unlock()
	return &fakeStream{ctx: ctx, addr: c.addr}, nil
}

func (*fakeConn) Close() error { return nil }

// fakeStream sends its address once, then ends.
type fakeStream struct {
	ctx  context.Context
	addr string
	sent bool
}

func (s *fakeStream) Context() context.Context { return s.ctx }
func (*fakeStream) SendMsg(any) error          { return nil }
func (*fakeStream) CloseSend() error           { return nil }
func (s *fakeStream) RecvMsg(m any) error {
	if s.sent {
		return io.EOF
	}
	s.sent = true
	if p, ok := m.(*string); ok {
		*p = s.addr
	}
	return nil
}

type staticDiscovery struct{ f *registry.Feed }

func (d staticDiscovery) Watch(_ context.Context, k registry.Key) (registry.Watcher, error) {
	return d.f.Watch(k), nil
}

// reference returns a consumer of target with the mesh engine, over n, fed
// spec; opts come after the test's own.
func reference(t *testing.T, n *fakeNet, spec mesh.Spec, opts ...consumer.Option) *consumer.Reference {
	t.Helper()
	snap, err := mesh.NewSnapshot(spec)
	if err != nil {
		t.Fatal(err)
	}
	f := &registry.Feed{}
	f.Publish(func(registry.Key) *mesh.Snapshot { return snap })
	quiet := slog.New(slog.DiscardHandler)
	o := append([]consumer.Option{consumer.WithEngine(routermesh.New(routermesh.WithSeed(7), routermesh.WithLogger(quiet))), consumer.WithLogger(quiet)}, opts...)
	ref, err := consumer.New(registry.Key{Interface: target}, staticDiscovery{f}, n, o...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ref.Close() })
	return ref
}

// greeterSpec is what registry-istio makes of the greeter behind istiod:
// clusters named after the target's host, subsets v1 (a1) and v2 (b1),
// and routes.
func greeterSpec(routes ...mesh.Route) mesh.Spec {
	ep := func(addr, v string) mesh.Endpoint {
		return mesh.Endpoint{Address: addr, Labels: map[string]string{"version": v}}
	}
	return mesh.Spec{
		Revision: "1",
		Services: []mesh.Service{{
			Name:      host,
			Endpoints: []mesh.Endpoint{ep("a1:1", "v1"), ep("b1:1", "v2")},
			Subsets: []mesh.Subset{
				{Name: "v1", Labels: map[string]string{"version": "v1"}},
				{Name: "v2", Labels: map[string]string{"version": "v2"}},
			},
		}},
		Routes: routes,
	}
}

func to(subset string) []mesh.WeightedDestination {
	return []mesh.WeightedDestination{{Destination: mesh.Destination{Service: host, Subset: subset}}}
}

// TestStreamsFollowMeshRoutes opens streams through a reference whose
// engine is router-mesh: a header match sends tagged streams to v2, the
// rest go to v1, and an abort fault stops streams it matches at open.
// Before streams went through the engine, every stream failed with "no
// cluster for greet.GreetService" (the call's service, not the target's
// cluster), as issue 11 measured against istiod.
func TestStreamsFollowMeshRoutes(t *testing.T) {
	n := &fakeNet{streams: map[string]int{}}
	ref := reference(t, n, greeterSpec(
		mesh.Route{
			Name: "abort", Matches: []mesh.RouteMatch{{Headers: []mesh.HeaderMatch{{Name: "x-abort", Value: mesh.Exact("1")}}}},
			Destinations: to("v1"), Policy: mesh.RoutePolicy{Fault: &mesh.FaultPolicy{Abort: &mesh.FaultAbort{Code: call.ResourceExhausted, Percentage: 100}}},
		},
		mesh.Route{Name: "canary", Matches: []mesh.RouteMatch{{Headers: []mesh.HeaderMatch{{Name: "x-canary", Value: mesh.Exact("true")}}}}, Destinations: to("v2")},
		mesh.Route{Name: "default", Destinations: to("v1")},
	))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	recv := func(att call.Attachments) (string, error) {
		st, err := ref.NewStream(call.WithAttachments(ctx, att), method)
		if err != nil {
			return "", err
		}
		var got string
		if err := st.RecvMsg(&got); err != nil {
			return "", err
		}
		if err := st.RecvMsg(new(string)); !errors.Is(err, io.EOF) {
			return "", err
		}
		return got, nil
	}
	for range 5 {
		if got, err := recv(call.Attachments{"x-canary": "true"}); err != nil || got != "b1:1" {
			t.Fatalf("tagged stream: served by %q, %v; want b1:1 (v2)", got, err)
		}
		if got, err := recv(nil); err != nil || got != "a1:1" {
			t.Fatalf("plain stream: served by %q, %v; want a1:1 (v1)", got, err)
		}
	}
	_, err := recv(call.Attachments{"x-abort": "1"})
	if call.CodeOf(err) != call.ResourceExhausted || !strings.Contains(err.Error(), "fault") {
		t.Fatalf("stream under an abort fault: %v, want RESOURCE_EXHAUSTED from the fault", err)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.streams["a1:1"] != 5 || n.streams["b1:1"] != 5 {
		t.Errorf("streams opened by endpoint: %v, want 5 each (none for the aborted one)", n.streams)
	}
}

// TestRouteTimeoutWinsOverReferenceDefault: a route timeout of 10 s lets a
// call that takes 5 s finish although the reference's default is 3 s
// (Istio: the route's timeout wins; the reference's applies only where the
// route sets none). Before, every engine call was bounded by the reference
// timeout and this call failed with DEADLINE_EXCEEDED.
func TestRouteTimeoutWinsOverReferenceDefault(t *testing.T) {
	n := &fakeNet{takes: 5 * time.Second, streams: map[string]int{}}
	withTimeout := reference(t, n, greeterSpec(mesh.Route{Destinations: to("v1"), Policy: mesh.RoutePolicy{Timeout: 10 * time.Second}}),
		consumer.WithTimeout(3*time.Second))
	var got string
	if err := withTimeout.Invoke(context.Background(), method, "hi", &got); err != nil || got != "a1:1" {
		t.Fatalf("a 5s call under a 10s route timeout with a 3s reference default: %q, %v; want it to finish", got, err)
	}

	// The same call on a route with no timeout gets the reference's 3 s.
	noTimeout := reference(t, n, greeterSpec(mesh.Route{Destinations: to("v1")}), consumer.WithTimeout(3*time.Second))
	if err := noTimeout.Invoke(context.Background(), method, "hi", &got); call.CodeOf(err) != call.DeadlineExceeded {
		t.Fatalf("a 5s call on a route without a timeout, reference default 3s: %v, want DEADLINE_EXCEEDED", err)
	}

	// A route timeout shorter than the reference's also wins.
	short := reference(t, n, greeterSpec(mesh.Route{Destinations: to("v1"), Policy: mesh.RoutePolicy{Timeout: time.Second}}),
		consumer.WithTimeout(30*time.Second))
	if err := short.Invoke(context.Background(), method, "hi", &got); call.CodeOf(err) != call.DeadlineExceeded {
		t.Fatalf("a 5s call under a 1s route timeout, reference default 30s: %v, want DEADLINE_EXCEEDED", err)
	}
}
