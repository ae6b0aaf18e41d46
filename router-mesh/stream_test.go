package routermesh

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shoalmesh/shoal/sdk/call"
	"github.com/shoalmesh/shoal/sdk/filter"
	"github.com/shoalmesh/shoal/sdk/mesh"
)

// testStream is an in-process fake stream attempt: it answers one message
// naming its endpoint, or fails as told; with wait it blocks until its
// context ends (a long stream).
type testStream struct {
	ctx     context.Context
	addr    string
	fail    error // trailers-only status on the first RecvMsg
	wait    bool
	started bool // response headers came before fail
	n       int
}

func (s *testStream) Context() context.Context { return s.ctx }
func (*testStream) SendMsg(any) error          { return nil }
func (*testStream) CloseSend() error           { return nil }
func (s *testStream) ResponseStarted() bool    { return s.started }
func (s *testStream) RecvMsg(m any) error {
	if s.wait {
		<-s.ctx.Done()
		return call.Errorf(call.CodeOf(s.ctx.Err()), "stream ended: %v", s.ctx.Err())
	}
	if s.fail != nil {
		return s.fail
	}
	s.n++
	if s.n > 1 {
		return io.EOF
	}
	if p, ok := m.(*string); ok {
		*p = s.addr
	}
	return nil
}

// opener opens testStreams; how says how each endpoint's stream behaves.
type opener struct {
	mu     sync.Mutex
	opened map[string]int
	how    func(addr string, s *testStream)
}

func newOpener(how func(addr string, s *testStream)) *opener {
	return &opener{opened: map[string]int{}, how: how}
}

func (o *opener) open(ctx context.Context, ep *mesh.Endpoint, _ *call.Info) (filter.ClientStream, error) {
	o.mu.Lock()
	o.opened[ep.Address]++
	o.mu.Unlock()
	s := &testStream{ctx: ctx, addr: ep.Address}
	if o.how != nil {
		o.how(ep.Address, s)
	}
	return s, nil
}

// readAll reads a stream to its end and returns the endpoint that answered.
func readAll(st filter.ClientStream) (string, error) {
	var got string
	for {
		var m string
		err := st.RecvMsg(&m)
		if errors.Is(err, io.EOF) {
			return got, nil
		}
		if err != nil {
			return got, err
		}
		got = m
	}
}

func streamCall(att call.Attachments) *call.Info {
	return &call.Info{Service: svc, Method: "Chat", Attachments: att, Streaming: true}
}

// TestStreamWeightedSplit: each stream draws its own weighted destination;
// 10,000 streams over 80/20 land 80 +/- 2 % on v1 (5 sigma).
func TestStreamWeightedSplit(t *testing.T) {
	r := newRouter(t, twoVersions(mesh.ClusterPolicy{}, split(80, 20)))
	o := newOpener(nil)
	onV1 := 0
	for range 10000 {
		st, err := r.NewStream(context.Background(), streamCall(nil), o.open)
		if err != nil {
			t.Fatal(err)
		}
		addr, err := readAll(st)
		if err != nil {
			t.Fatal(err)
		}
		if isV1(addr) {
			onV1++
		}
	}
	if share := float64(onV1) / 100; share < 78 || share > 82 {
		t.Errorf("%.1f%% of streams on v1, want 80 +/- 2", share)
	}
}

// TestStreamFaultsAtOpen: an abort fails the open without reaching a
// provider; a delay holds the open back.
func TestStreamFaultsAtOpen(t *testing.T) {
	rt := split(100, 0)
	rt.Policy.Fault = &mesh.FaultPolicy{Abort: &mesh.FaultAbort{Code: call.Unavailable, Percentage: 50}}
	r := newRouter(t, twoVersions(mesh.ClusterPolicy{}, rt))
	o := newOpener(nil)
	aborted := 0
	for range 2000 {
		st, err := r.NewStream(context.Background(), streamCall(nil), o.open)
		if err != nil {
			if call.CodeOf(err) != call.Unavailable {
				t.Fatalf("aborted with %v, want UNAVAILABLE", err)
			}
			aborted++
			continue
		}
		if _, err := readAll(st); err != nil {
			t.Fatal(err)
		}
	}
	opened := 0
	for _, n := range o.opened {
		opened += n
	}
	// 2,000 streams at 50 %: standard deviation 1.1 points, tolerance 5.5.
	if share := float64(aborted) / 20; share < 44.5 || share > 55.5 || aborted+opened != 2000 {
		t.Errorf("aborted %d, opened %d of 2000; want 50 +/- 5.5 %% aborted and no aborted stream opened", aborted, opened)
	}

	rt.Policy.Fault = &mesh.FaultPolicy{Delay: &mesh.FaultDelay{Fixed: time.Minute, Percentage: 100}}
	r = newRouter(t, twoVersions(mesh.ClusterPolicy{}, rt))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
	defer cancel()
	if _, err := r.NewStream(ctx, streamCall(nil), o.open); call.CodeOf(err) != call.DeadlineExceeded {
		t.Fatalf("a stream held by a one-minute delay past its 5ms deadline: %v, want DEADLINE_EXCEEDED", err)
	}
}

// TestStreamRouteTimeoutBoundsTheStream: the route's timeout ends a stream
// that would last longer (max_stream_duration), wherever it is.
func TestStreamRouteTimeoutBoundsTheStream(t *testing.T) {
	rt := split(100, 0)
	rt.Policy.Timeout = 50 * time.Millisecond
	r := newRouter(t, twoVersions(mesh.ClusterPolicy{}, rt))
	o := newOpener(func(_ string, s *testStream) { s.wait = true })
	st, err := r.NewStream(context.Background(), streamCall(nil), o.open)
	if err != nil {
		t.Fatal(err)
	}
	if dl, ok := st.Context().Deadline(); !ok || time.Until(dl) > 50*time.Millisecond {
		t.Fatalf("stream context deadline %v (set %v), want the route's 50ms", dl, ok)
	}
	if _, err := readAll(st); call.CodeOf(err) != call.DeadlineExceeded {
		t.Fatalf("a long stream under a 50ms route timeout: %v, want DEADLINE_EXCEEDED", err)
	}
}

// TestStreamCircuitBreaker: open streams hold places under
// http2MaxRequests until they end.
func TestStreamCircuitBreaker(t *testing.T) {
	policy := mesh.ClusterPolicy{ConnectionPool: &mesh.ConnectionPool{MaxRequests: 2}}
	r := newRouter(t, twoVersions(policy, split(100, 0)))
	o := newOpener(nil)
	a, err := r.NewStream(context.Background(), streamCall(nil), o.open)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.NewStream(context.Background(), streamCall(nil), o.open); err != nil {
		t.Fatal(err)
	}
	_, err = r.NewStream(context.Background(), streamCall(nil), o.open)
	if call.CodeOf(err) != call.Unavailable || !strings.Contains(err.Error(), "http2MaxRequests") {
		t.Fatalf("third open stream: %v, want UNAVAILABLE naming http2MaxRequests", err)
	}
	if _, err := readAll(a); err != nil { // ends one stream
		t.Fatal(err)
	}
	if _, err := r.NewStream(context.Background(), streamCall(nil), o.open); err != nil {
		t.Fatalf("after one stream ended: %v", err)
	}
	// Unary calls share the limit: two streams are open.
	err = r.Invoke(context.Background(), greetCall(nil), nil, nil, func(context.Context, *mesh.Endpoint, *call.Info, any, any) error { return nil })
	if call.CodeOf(err) != call.Unavailable {
		t.Errorf("a unary call beside two open streams: %v, want UNAVAILABLE", err)
	}
}

// TestStreamOutlierDetection: streams that end with UNAVAILABLE on one
// endpoint get it ejected; the next streams avoid it.
func TestStreamOutlierDetection(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1000, 0)}
	policy := mesh.ClusterPolicy{OutlierDetection: &mesh.OutlierDetection{Consecutive5xxErrors: 2, BaseEjectionTime: time.Minute, MaxEjectionPercent: 50}}
	r := newRouter(t, twoVersions(policy, split(100, 0)), WithClock(clock.Now))
	const bad = "10.0.0.1:1"
	o := newOpener(func(addr string, s *testStream) {
		if addr == bad {
			s.fail, s.started = call.Errorf(call.Unavailable, "broken"), true
		}
	})
	for range 6 {
		st, err := r.NewStream(context.Background(), streamCall(nil), o.open)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = readAll(st)
	}
	if !r.Ejected(v1, bad) {
		t.Fatalf("after streams failing on %s: not ejected (opened %v)", bad, o.opened)
	}
	before := o.opened[bad]
	for range 10 {
		st, err := r.NewStream(context.Background(), streamCall(nil), o.open)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := readAll(st); err != nil {
			t.Fatalf("a stream after the ejection: %v", err)
		}
	}
	if o.opened[bad] != before {
		t.Errorf("the ejected endpoint got %d more streams", o.opened[bad]-before)
	}
}

// TestStreamRetryPolicy: the route's retry policy moves a stream the
// provider refused with a status alone to the other endpoint; a stream the
// provider had answered is not moved.
func TestStreamRetryPolicy(t *testing.T) {
	on, _ := mesh.ParseRetryOn("unavailable")
	rt := split(100, 0)
	rt.Policy.Retry = &mesh.RetryPolicy{Attempts: 2, On: on, Backoff: mesh.Backoff{Base: time.Microsecond}}
	r := newRouter(t, twoVersions(mesh.ClusterPolicy{}, rt))
	const bad = "10.0.0.1:1"
	refuse := newOpener(func(addr string, s *testStream) {
		if addr == bad {
			s.fail = call.Errorf(call.Unavailable, "not ready")
		}
	})
	for range 10 {
		st, err := r.NewStream(context.Background(), streamCall(nil), refuse.open)
		if err != nil {
			t.Fatal(err)
		}
		if addr, err := readAll(st); err != nil || addr != "10.0.0.2:1" {
			t.Fatalf("stream answered by %q, %v; want the retry on 10.0.0.2:1", addr, err)
		}
	}
	if refuse.opened[bad] == 0 {
		t.Fatal("no stream went to the refusing endpoint; the test shows nothing")
	}
	answered := newOpener(func(addr string, s *testStream) {
		if addr == bad {
			s.fail, s.started = call.Errorf(call.Unavailable, "broke after headers"), true
		}
	})
	failed := 0
	for range 10 {
		st, err := r.NewStream(context.Background(), streamCall(nil), answered.open)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := readAll(st); err != nil {
			failed++
		}
	}
	if failed != answered.opened[bad] || failed == 0 {
		t.Errorf("%d streams failed, %d went to %s; want every one of those to fail, none retried", failed, answered.opened[bad], bad)
	}
}
