package meshe2e_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/shoalmesh/shoal/proto/greet"
	"github.com/shoalmesh/shoal/sdk/mesh"
	"github.com/shoalmesh/shoal/triple"
)

// TestMeshStreams runs server-streaming, client-streaming and bidi calls
// through the real istiod under the same rules as unary calls: weighted split, header
// match, abort and delay faults at open, and the route timeout ending a
// long stream.
func TestMeshStreams(t *testing.T) {
	ctx, e := meshTest(t)
	for _, kind := range []streamKind{serverStreaming, clientStreaming, bidi} {
		t.Run(kind.String(), func(t *testing.T) {
			t.Run("WeightedSplit", func(t *testing.T) { testStreamSplit(ctx, t, e, kind) })
			t.Run("HeaderMatch", func(t *testing.T) { testStreamHeaderMatch(ctx, t, e, kind) })
			t.Run("FaultAbort", func(t *testing.T) { testStreamAbort(ctx, t, e, kind) })
			t.Run("FaultDelay", func(t *testing.T) { testStreamDelay(ctx, t, e, kind) })
			t.Run("RouteTimeout", func(t *testing.T) { testStreamTimeout(ctx, t, e, kind) })
		})
	}
}

type streamKind int

const (
	serverStreaming streamKind = iota
	clientStreaming
	bidi
)

func (k streamKind) String() string {
	switch k {
	case clientStreaming:
		return "ClientStreaming"
	case bidi:
		return "Bidi"
	}
	return "ServerStreaming"
}

// rules applies the base Service and DestinationRule (plain subsets, no
// consistent hash left from another test) with routes, and waits until
// the consumer has them.
func (e *env) rules(ctx context.Context, t *testing.T, routes string, ok func(*mesh.Snapshot) bool) {
	t.Helper()
	e.apply(ctx, t, base+"---"+virtualService(routes), func(s *mesh.Snapshot) bool {
		for _, c := range s.Clusters() {
			if lb := c.Policy().LoadBalancer; lb != nil && lb.ConsistentHash != nil {
				return false
			}
			if p := c.Policy().ConnectionPool; p != nil && p.MaxRequests != 0 && p.MaxRequests < 100 {
				return false
			}
		}
		return ok(s)
	})
}

// stream makes one stream of the kind with metadata md: a server stream
// of two answers, a client stream of two requests, or a bidi stream of two
// round trips. It returns the version that served it; hold keeps a bidi
// stream open after its first answer until the route's timeout ends it,
// and asks a server or client stream to sleep that long before answering.
func (e *env) stream(ctx context.Context, kind streamKind, hold time.Duration, md ...string) (string, error) {
	if len(md) > 0 {
		ctx = triple.AppendToOutgoingContext(ctx, md...)
	}
	var served string
	check := func(r *greet.GreetResponse) error {
		v := version(r.GetServedBy())
		if served != "" && v != served {
			return errors.New("one stream was served by " + served + " and " + v)
		}
		served = v
		return nil
	}
	if kind == serverStreaming {
		st, err := e.client.GreetServerStream(ctx, &greet.GreetRequest{Name: "stream", Count: 2, SleepMs: int32(hold / time.Millisecond)})
		if err != nil {
			return "", err
		}
		for {
			r, err := st.Recv()
			if errors.Is(err, io.EOF) {
				return served, nil
			}
			if err != nil {
				return served, err
			}
			if err := check(r); err != nil {
				return served, err
			}
		}
	}
	if kind == clientStreaming {
		st, err := e.client.GreetClientStream(ctx)
		if err != nil {
			return "", err
		}
		for i := range 2 {
			req := &greet.GreetRequest{Name: fmt.Sprint("client-", i)}
			if i == 1 {
				req.SleepMs = int32(hold / time.Millisecond)
			}
			if err := st.Send(req); err != nil && !errors.Is(err, io.EOF) {
				return "", err
			}
		}
		r, err := st.CloseAndRecv()
		if err != nil {
			return "", err
		}
		if r.GetGreeting() != "Hello, client-0, client-1" {
			return "", errors.New("the client stream's answer was " + r.GetGreeting())
		}
		return version(r.GetServedBy()), nil
	}
	st, err := e.client.GreetBidiStream(ctx)
	if err != nil {
		return "", err
	}
	for i := range 2 {
		if err := st.Send(&greet.GreetRequest{Name: "bidi"}); err != nil && !errors.Is(err, io.EOF) {
			return served, err
		}
		r, err := st.Recv()
		if err != nil {
			return served, err
		}
		if err := check(r); err != nil {
			return served, err
		}
		if i == 0 && hold > 0 {
			if _, err := st.Recv(); err != nil { // nothing more comes until the stream is cut
				return served, err
			}
		}
	}
	if err := st.CloseSend(); err != nil {
		return served, err
	}
	if _, err := st.Recv(); !errors.Is(err, io.EOF) {
		return served, err
	}
	return served, nil
}

// tallyStreams makes n streams and counts them by serving version, and by
// code for failures.
func (e *env) tallyStreams(ctx context.Context, kind streamKind, n int, md ...string) (byVersion map[string]int, byCode map[triple.Code]int) {
	byVersion, byCode = map[string]int{}, map[triple.Code]int{}
	for range n {
		v, err := e.stream(ctx, kind, 0, md...)
		if err != nil {
			byCode[triple.CodeOf(err)]++
			continue
		}
		byVersion[v]++
	}
	return byVersion, byCode
}

// 80/20 over 1,000 streams: 80 +/- 5 % on v1, each stream on one version.
func testStreamSplit(ctx context.Context, t *testing.T, e *env, kind streamKind) {
	e.rules(ctx, t, `
  - route:
    - {destination: {host: greeter.default.svc.cluster.local, subset: v1}, weight: 80}
    - {destination: {host: greeter.default.svc.cluster.local, subset: v2}, weight: 20}
`, weights(80, 20))
	by, codes := e.tallyStreams(ctx, kind, 1000)
	if len(codes) > 0 || !within(by["v1"], 1000, 0.80, 0.05) {
		t.Fatalf("80/20: v1 %d, v2 %d of 1000 streams (failures %v); want v1 800 +/- 50 and no failure; snapshot:%s", by["v1"], by["v2"], codes, e.dump())
	}
	t.Logf("80/20: v1 %d, v2 %d of 1000 streams", by["v1"], by["v2"])
}

// A header match sends tagged streams to v2 only, the rest to v1.
func testStreamHeaderMatch(ctx context.Context, t *testing.T, e *env, kind streamKind) {
	e.rules(ctx, t, `
  - match:
    - headers: {x-canary: {exact: "true"}}
    route:
    - destination: {host: greeter.default.svc.cluster.local, subset: v2}
  - route:
    - destination: {host: greeter.default.svc.cluster.local, subset: v1}
`, func(s *mesh.Snapshot) bool { return len(s.Routes()) == 2 })
	by, codes := e.tallyStreams(ctx, kind, 100, "x-canary", "true")
	if len(codes) > 0 || by["v2"] != 100 {
		t.Errorf("tagged streams: %v (failures %v), want all 100 on v2", by, codes)
	}
	by, codes = e.tallyStreams(ctx, kind, 100, "x-canary", "false")
	if len(codes) > 0 || by["v1"] != 100 {
		t.Errorf("untagged streams: %v (failures %v), want all 100 on v1", by, codes)
	}
}

// Abort 50 % with UNAVAILABLE: about half of 1,000 streams fail to open.
func testStreamAbort(ctx context.Context, t *testing.T, e *env, kind streamKind) {
	e.rules(ctx, t, `
  - fault:
      abort: {percentage: {value: 50}, grpcStatus: UNAVAILABLE}
    route:
    - destination: {host: greeter.default.svc.cluster.local, subset: v1}
`, routeWith(func(r mesh.Route) bool { return r.Policy.Fault != nil && r.Policy.Fault.Abort != nil }))
	by, codes := e.tallyStreams(ctx, kind, 1000)
	if !within(codes[triple.CodeUnavailable], 1000, 0.50, 0.05) || len(codes) != 1 {
		t.Errorf("abort 50%%: failures %v, successes %v of 1000 streams; want 500 +/- 50 UNAVAILABLE and no other code", codes, by)
	}
	t.Logf("abort 50%%: %d of 1000 streams failed with UNAVAILABLE", codes[triple.CodeUnavailable])
}

// A 200 ms delay holds every stream back before it opens.
func testStreamDelay(ctx context.Context, t *testing.T, e *env, kind streamKind) {
	e.rules(ctx, t, `
  - fault:
      delay: {percentage: {value: 100}, fixedDelay: 200ms}
    route:
    - destination: {host: greeter.default.svc.cluster.local, subset: v1}
`, routeWith(func(r mesh.Route) bool { return r.Policy.Fault != nil && r.Policy.Fault.Delay != nil }))
	var lat []time.Duration
	for range 10 {
		start := time.Now()
		if _, err := e.stream(ctx, kind, 0); err != nil {
			t.Fatalf("%v; snapshot:%s", err, e.dump())
		}
		lat = append(lat, time.Since(start))
	}
	for _, l := range lat {
		if l < 200*time.Millisecond {
			t.Errorf("a stream took %v under a 200ms delay fault", l)
		}
	}
	t.Logf("stream durations under the delay fault: %v", lat)
}

// A 300 ms route timeout ends a stream that would last 5 s with
// DEADLINE_EXCEEDED; a short stream under it completes.
func testStreamTimeout(ctx context.Context, t *testing.T, e *env, kind streamKind) {
	e.rules(ctx, t, `
  - timeout: 300ms
    route:
    - destination: {host: greeter.default.svc.cluster.local, subset: v1}
`, routeWith(func(r mesh.Route) bool { return r.Policy.Timeout == 300*time.Millisecond }))
	start := time.Now()
	_, err := e.stream(ctx, kind, 5*time.Second)
	took := time.Since(start)
	if triple.CodeOf(err) != triple.CodeDeadlineExceeded {
		t.Fatalf("a 5s stream under a 300ms route timeout: %v, want DEADLINE_EXCEEDED; snapshot:%s", err, e.dump())
	}
	if _, err := e.stream(ctx, kind, 0); err != nil {
		t.Errorf("a short stream under the 300ms timeout: %v", err)
	}
	t.Logf("the long stream was ended after %v", took.Round(time.Millisecond))
}
