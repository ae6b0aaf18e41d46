package consumer_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/shoalmesh/shoal/sdk/balancer"
	"github.com/shoalmesh/shoal/sdk/call"
	"github.com/shoalmesh/shoal/sdk/cluster"
	"github.com/shoalmesh/shoal/sdk/consumer"
	"github.com/shoalmesh/shoal/sdk/filter"
	"github.com/shoalmesh/shoal/sdk/mesh"
	"github.com/shoalmesh/shoal/sdk/registry"
	"github.com/shoalmesh/shoal/sdk/registry/file"
	"github.com/shoalmesh/shoal/sdk/router"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// memNet is an in-memory network: handlers by address.
type memNet struct {
	mu       sync.Mutex
	handlers map[string]func(ctx context.Context, info *call.Info, req any) (any, error)
	dials    atomic.Int64
	closes   atomic.Int64
}

func newNet() *memNet {
	return &memNet{handlers: map[string]func(context.Context, *call.Info, any) (any, error){}}
}

func (n *memNet) handle(addr string, h func(ctx context.Context, info *call.Info, req any) (any, error)) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.handlers[addr] = h
}

func (n *memNet) Dial(_ context.Context, ep *mesh.Endpoint) (consumer.Conn, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, ok := n.handlers[ep.Address]; !ok {
		return nil, errors.New("connection refused")
	}
	n.dials.Add(1)
	return &memConn{net: n, addr: ep.Address}, nil
}

type memConn struct {
	net    *memNet
	addr   string
	closed atomic.Bool
}

func (c *memConn) Invoke(ctx context.Context, info *call.Info, req, resp any) error {
	if c.closed.Load() {
		return &call.Error{Code: call.Unavailable, Connect: true, Message: "closed"}
	}
	c.net.mu.Lock()
	h := c.net.handlers[c.addr]
	c.net.mu.Unlock()
	if h == nil {
		return &call.Error{Code: call.Unavailable, Connect: true, Message: "refused"}
	}
	out, err := h(ctx, info, req)
	if err != nil {
		return err
	}
	if p, ok := resp.(*string); ok {
		*p = out.(string)
	}
	return nil
}

func (c *memConn) NewStream(context.Context, *call.Info) (filter.ClientStream, error) {
	return nil, call.Errorf(call.Unimplemented, "no streams in memory")
}

func (c *memConn) Close() error {
	c.closed.Store(true)
	c.net.closes.Add(1)
	return nil
}

func hello(addr string) func(context.Context, *call.Info, any) (any, error) {
	return func(context.Context, *call.Info, any) (any, error) { return addr, nil }
}

const svc = "greet.GreetService"

func publish(t testing.TB, f *registry.Feed, spec mesh.Spec) {
	t.Helper()
	snap, err := mesh.NewSnapshot(spec)
	if err != nil {
		t.Fatal(err)
	}
	f.Publish(func(registry.Key) *mesh.Snapshot { return snap })
}

func service(rev string, addrs ...string) mesh.Spec {
	s := mesh.Service{Name: svc}
	for _, a := range addrs {
		s.Endpoints = append(s.Endpoints, mesh.Endpoint{Address: a})
	}
	return mesh.Spec{Revision: rev, Services: []mesh.Service{s}}
}

type feedDiscovery struct{ f *registry.Feed }

func (d feedDiscovery) Watch(_ context.Context, k registry.Key) (registry.Watcher, error) {
	return d.f.Watch(k), nil
}

func newRef(t testing.TB, f *registry.Feed, n *memNet, opts ...consumer.Option) *consumer.Reference {
	t.Helper()
	r, err := consumer.New(registry.Key{Interface: svc}, feedDiscovery{f}, n, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := r.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	return r
}

func greet(ctx context.Context, r *consumer.Reference) (string, error) {
	var out string
	err := r.Invoke(ctx, "Greet", "hi", &out)
	return out, err
}

// eventually polls cond for up to 5s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

func TestBalancesAndFollowsUpdates(t *testing.T) {
	n := newNet()
	for _, a := range []string{"10.0.0.1:1", "10.0.0.2:1", "10.0.0.3:1"} {
		n.handle(a, hello(a))
	}
	f := &registry.Feed{}
	publish(t, f, service("1", "10.0.0.1:1", "10.0.0.2:1"))
	r := newRef(t, f, n, consumer.WithRetireGrace(20*time.Millisecond))
	got := map[string]int{}
	for range 200 {
		out, err := greet(context.Background(), r)
		if err != nil {
			t.Fatal(err)
		}
		got[out]++
	}
	if got["10.0.0.1:1"] != 100 || got["10.0.0.2:1"] != 100 {
		t.Errorf("round robin over 2 endpoints: %v", got)
	}
	publish(t, f, service("2", "10.0.0.1:1", "10.0.0.2:1", "10.0.0.3:1"))
	eventually(t, "the new endpoint", func() bool {
		out, _ := greet(context.Background(), r)
		return out == "10.0.0.3:1"
	})
	// The removed endpoint's connection closes; the new one is dialled lazily.
	publish(t, f, service("3", "10.0.0.3:1"))
	eventually(t, "calls only to the remaining endpoint", func() bool {
		for range 5 {
			if out, _ := greet(context.Background(), r); out != "10.0.0.3:1" {
				return false
			}
		}
		return true
	})
	eventually(t, "retired connections closed", func() bool { return n.closes.Load() == 2 })
	if n.dials.Load() != 3 {
		t.Errorf("%d dials, want one per endpoint", n.dials.Load())
	}
}

func TestFailoverAroundABrokenEndpoint(t *testing.T) {
	n := newNet()
	n.handle("10.0.0.1:1", func(context.Context, *call.Info, any) (any, error) {
		return nil, call.Errorf(call.Unavailable, "overloaded")
	})
	n.handle("10.0.0.2:1", hello("10.0.0.2:1"))
	f := &registry.Feed{}
	// 10.0.0.3 is in discovery but refuses connections.
	publish(t, f, service("1", "10.0.0.1:1", "10.0.0.2:1", "10.0.0.3:1"))
	r := newRef(t, f, n, consumer.WithStrategy(cluster.Failover(cluster.WithBackoff(mesh.Backoff{Base: time.Microsecond}))))
	for i := range 100 {
		if out, err := greet(context.Background(), r); err != nil || out != "10.0.0.2:1" {
			t.Fatalf("call %d: %q, %v", i, out, err)
		}
	}
	ff := newRef(t, f, n, consumer.WithStrategy(cluster.Failfast()))
	failed := 0
	for range 30 {
		if _, err := greet(context.Background(), ff); err != nil {
			failed++
		}
	}
	if failed != 20 {
		t.Errorf("failfast: %d of 30 calls failed, want 20 (two broken endpoints of three)", failed)
	}
}

func TestGracefulRemovalLosesNoCall(t *testing.T) {
	n := newNet()
	slow := func(addr string) func(context.Context, *call.Info, any) (any, error) {
		return func(ctx context.Context, _ *call.Info, _ any) (any, error) {
			select {
			case <-time.After(2 * time.Millisecond):
				return addr, nil
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
	}
	n.handle("10.0.0.1:1", slow("10.0.0.1:1"))
	n.handle("10.0.0.2:1", slow("10.0.0.2:1"))
	f := &registry.Feed{}
	publish(t, f, service("1", "10.0.0.1:1", "10.0.0.2:1"))
	r := newRef(t, f, n, consumer.WithStrategy(cluster.Failfast()), consumer.WithRetireGrace(10*time.Millisecond)) // no retries: every failure would show
	var wg sync.WaitGroup
	var calls, failures atomic.Int64
	stop := make(chan struct{})
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 2000; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := greet(context.Background(), r); err != nil {
					failures.Add(1)
					t.Errorf("call failed during removal: %v", err)
				}
				calls.Add(1)
			}
		}()
	}
	time.Sleep(30 * time.Millisecond)
	publish(t, f, service("2", "10.0.0.2:1")) // 10.0.0.1 deregisters mid-load
	eventually(t, "the removed endpoint's connection to close after its calls", func() bool { return n.closes.Load() == 1 })
	time.Sleep(20 * time.Millisecond)
	close(stop)
	wg.Wait()
	if calls.Load() == 0 || failures.Load() != 0 {
		t.Errorf("%d calls, %d failures", calls.Load(), failures.Load())
	}
}

func TestFiltersAttachmentsAndTimeout(t *testing.T) {
	n := newNet()
	n.handle("10.0.0.1:1", func(ctx context.Context, info *call.Info, _ any) (any, error) {
		if info.Attachments["x-hang"] == "1" {
			<-ctx.Done()
			return nil, ctx.Err()
		}
		return info.Path() + " " + info.Attachments["x-user"] + " " + info.Attachments["x-filter"], nil
	})
	f := &registry.Feed{}
	publish(t, f, service("1", "10.0.0.1:1"))
	chain, err := filter.NewClientChain(filter.Client{Name: "stamp", Unary: func(ctx context.Context, info *call.Info, req, resp any, next filter.UnaryInvoker) error {
		info.Attachments = info.Attachments.Clone().Set("x-filter", "seen")
		return next(ctx, info, req, resp)
	}})
	if err != nil {
		t.Fatal(err)
	}
	r := newRef(t, f, n, consumer.WithFilters(chain), consumer.WithTimeout(30*time.Millisecond))
	out, err := greet(call.WithAttachments(context.Background(), call.Attachments{"x-user": "alice"}), r)
	if err != nil || out != "/greet.GreetService/Greet alice seen" {
		t.Fatalf("got %q, %v", out, err)
	}
	// The full path, as generated clients pass it, names the same method.
	if err := r.Invoke(call.WithAttachments(context.Background(), call.Attachments{"x-user": "bob"}), "/greet.GreetService/Greet", nil, &out); err != nil || out != "/greet.GreetService/Greet bob seen" {
		t.Fatalf("full path: %q, %v", out, err)
	}
	start := time.Now()
	_, err = greet(call.WithAttachments(context.Background(), call.Attachments{"x-hang": "1"}), r)
	if call.CodeOf(err) != call.DeadlineExceeded || time.Since(start) > 2*time.Second {
		t.Errorf("hanging call: %v after %s, want DEADLINE_EXCEEDED after 30ms", err, time.Since(start))
	}
}

func TestCallsWaitForTheFirstState(t *testing.T) {
	n := newNet()
	n.handle("10.0.0.1:1", hello("10.0.0.1:1"))
	f := &registry.Feed{}
	r, err := consumer.New(registry.Key{Interface: svc}, feedDiscovery{f}, n)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := greet(ctx, r); call.CodeOf(err) != call.Unavailable {
		t.Errorf("before any state: %v, want UNAVAILABLE", err)
	}
	go func() { time.Sleep(10 * time.Millisecond); publish(t, f, service("1", "10.0.0.1:1")) }()
	ctx2, cancel2 := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel2()
	if out, err := greet(ctx2, r); err != nil || out != "10.0.0.1:1" {
		t.Errorf("after the state: %q, %v", out, err)
	}
}

func TestNewValidates(t *testing.T) {
	_, err := consumer.New(registry.Key{}, nil, nil, consumer.WithTimeout(-1), consumer.WithRetireGrace(-1))
	for _, want := range []string{"empty interface name", "no discovery", "no transport", "negative timeout", "negative retire grace"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v, want %q", err, want)
		}
	}
}

func noopFilter(name string, order int) filter.Client {
	return filter.Client{Name: name, Order: order, Unary: func(ctx context.Context, info *call.Info, req, resp any, next filter.UnaryInvoker) error {
		return next(ctx, info, req, resp)
	}}
}

// nopConn is a fake no-op connection: every call succeeds at once. With
// deadlines set it declares itself a consumer.DeadlineConn (returning at
// once, it always ends by info.Deadline) and records the last Deadline (as
// Unix nanoseconds) in last.
type nopConn struct {
	deadlines bool
	last      *atomic.Int64
}

func (c *nopConn) Invoke(_ context.Context, info *call.Info, _, _ any) error {
	if c.last != nil {
		c.last.Store(info.Deadline.UnixNano())
	}
	return nil
}

func (*nopConn) NewStream(context.Context, *call.Info) (filter.ClientStream, error) {
	return nil, call.Errorf(call.Unimplemented, "no streams")
}

func (*nopConn) Close() error { return nil }

func (c *nopConn) EnforcesDeadline() bool { return c.deadlines }

// nopNet is a fake transport of nopConns.
type nopNet struct {
	deadlines bool
	last      *atomic.Int64
}

func (n nopNet) Dial(context.Context, *mesh.Endpoint) (consumer.Conn, error) {
	return &nopConn{deadlines: n.deadlines, last: n.last}, nil
}

// overheadRef is the reference of the performance target: the file
// registry with 10 endpoints, round robin, failover (the default) and 3
// no-op filters, over t.
func overheadRef(tb testing.TB, t consumer.Transport, opts ...consumer.Option) *consumer.Reference {
	tb.Helper()
	reg, err := file.New(filepath.Join(tb.TempDir(), "registry.yaml"), file.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { reg.Close() })
	ctx := context.Background()
	for i := range 10 {
		if err := reg.Register(ctx, registry.Instance{Key: registry.Key{Interface: svc}, Address: "10.0.0." + strconv.Itoa(i+1) + ":1"}); err != nil {
			tb.Fatal(err)
		}
	}
	chain, _ := filter.NewClientChain(noopFilter("a", 1), noopFilter("b", 2), noopFilter("c", 3))
	r, err := consumer.New(registry.Key{Interface: svc}, reg, t, append([]consumer.Option{consumer.WithFilters(chain), consumer.WithBalancer(balancer.RoundRobin())}, opts...)...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { r.Close() })
	if err := r.WaitReady(ctx); err != nil {
		tb.Fatal(err)
	}
	return r
}

// TestDefaultTimeoutAllocations pins what the sdk allocates per call with
// the default timeout over a connection that enforces the deadline (as
// triple's does): one allocation, the call.Info, as with no timeout; the
// connection sees the 3s Deadline. A connection that does not enforce it
// gets a derived context instead.
func TestDefaultTimeoutAllocations(t *testing.T) {
	ctx := context.Background()
	var last atomic.Int64
	r := overheadRef(t, nopNet{deadlines: true, last: &last})
	start := time.Now()
	if err := r.Invoke(ctx, "Greet", nil, nil); err != nil {
		t.Fatal(err)
	}
	if dl := time.Unix(0, last.Load()); dl.Before(start.Add(consumer.DefaultTimeout)) || dl.After(time.Now().Add(consumer.DefaultTimeout)) {
		t.Fatalf("the connection saw Deadline %s, want %s from the call", dl, consumer.DefaultTimeout)
	}
	allocs := testing.AllocsPerRun(1000, func() {
		if err := r.Invoke(ctx, "Greet", nil, nil); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 1 {
		t.Errorf("a call with the default timeout allocates %.1f times, want 1 (the call.Info)", allocs)
	}
	// A caller's earlier deadline leaves Deadline unset: ctx bounds the call.
	short, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if err := r.Invoke(short, "Greet", nil, nil); err != nil || last.Load() != (time.Time{}).UnixNano() {
		t.Errorf("with a 1s context: err %v, Deadline %s, want none", err, time.Unix(0, last.Load()))
	}

	derived := overheadRef(t, nopNet{}, consumer.WithTimeout(time.Second))
	allocs = testing.AllocsPerRun(1000, func() {
		if err := derived.Invoke(ctx, "Greet", nil, nil); err != nil {
			t.Fatal(err)
		}
	})
	t.Logf("a connection that does not enforce Deadline: %.1f allocations per call", allocs)
}

// BenchmarkOverhead measures what the sdk adds to a call: the file
// registry's state with 10 endpoints, routing, round robin, failover and 3
// no-op filters, against calling the same connection directly; with no
// timeout, with the default one over a connection that enforces
// call.Info.Deadline (as triple's does), and over one that does not (the
// reference derives a context).
func BenchmarkOverhead(b *testing.B) {
	ctx := context.Background()
	b.Run("bare", func(b *testing.B) {
		c, _ := nopNet{}.Dial(ctx, &mesh.Endpoint{Address: "10.0.0.1:1"})
		info := &call.Info{Service: svc, Method: "Greet"}
		b.ReportAllocs()
		for b.Loop() {
			if err := c.Invoke(ctx, info, nil, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, c := range []struct {
		name string
		t    nopNet
		opts []consumer.Option
	}{
		{"sdk/timeout=off", nopNet{deadlines: true}, []consumer.Option{consumer.WithTimeout(0)}},
		{"sdk/timeout=default", nopNet{deadlines: true}, nil},
		{"sdk/timeout=default/derived-context", nopNet{}, nil},
	} {
		b.Run(c.name, func(b *testing.B) {
			r := overheadRef(b, c.t, c.opts...)
			b.ReportAllocs()
			for b.Loop() {
				if err := r.Invoke(ctx, "Greet", nil, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestFileEditReachesCalls: an endpoint added to the registry file by hand
// takes calls without a restart, and a bad edit leaves calls working.
func TestFileEditReachesCalls(t *testing.T) {
	path := filepath.Join(t.TempDir(), "registry.yaml")
	write := func(content string) {
		if err := os.WriteFile(path+".tmp", []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(path+".tmp", path); err != nil {
			t.Fatal(err)
		}
	}
	write("services:\n  greet.GreetService:\n    instances:\n      - address: 10.0.0.1:1\n")
	reg, err := file.New(path, file.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))), file.WithDebounce(time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	n := newNet()
	n.handle("10.0.0.1:1", hello("10.0.0.1:1"))
	n.handle("10.0.0.2:1", hello("10.0.0.2:1"))
	r, err := consumer.New(registry.Key{Interface: svc}, reg, n)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if out, err := greet(ctx, r); err != nil || out != "10.0.0.1:1" {
		t.Fatalf("first call: %q, %v", out, err)
	}
	write("services:\n  greet.GreetService:\n    instances:\n      - address: 10.0.0.1:1\n      - address: 10.0.0.2:1\n")
	eventually(t, "a call on the endpoint added to the file", func() bool {
		out, err := greet(ctx, r)
		return err == nil && out == "10.0.0.2:1"
	})
	write("services:\n  greet.GreetService:\n    instances:\n      - address: nonsense\n")
	eventually(t, "the bad edit to be rejected", func() bool { return reg.Err() != nil })
	for range 10 {
		if _, err := greet(ctx, r); err != nil {
			t.Fatalf("call after a rejected edit: %v", err)
		}
	}
}

func TestWaitForReady(t *testing.T) {
	n := newNet()
	n.handle("10.0.0.1:1", hello("10.0.0.1:1"))
	f := &registry.Feed{}
	publish(t, f, service("1")) // no provider yet
	fast := newRef(t, f, n)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := greet(ctx, fast); !errors.Is(err, balancer.ErrNoReadyEndpoint) || call.CodeOf(err) != call.Unavailable {
		t.Fatalf("without wait-for-ready: %v, want an UNAVAILABLE no-ready-endpoint error", err)
	}
	patient := newRef(t, f, n, consumer.WithWaitForReady())
	go func() { time.Sleep(20 * time.Millisecond); publish(t, f, service("2", "10.0.0.1:1")) }()
	if out, err := greet(ctx, patient); err != nil || out != "10.0.0.1:1" {
		t.Fatalf("with wait-for-ready: %q, %v", out, err)
	}
	// When the provider leaves, a waiting call gives up at its deadline
	// with the no-ready-endpoint error.
	publish(t, f, service("3"))
	eventually(t, "a waiting call to end at its deadline", func() bool {
		short, cancelShort := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancelShort()
		start := time.Now()
		_, err := greet(short, patient)
		return errors.Is(err, balancer.ErrNoReadyEndpoint) && time.Since(start) >= 15*time.Millisecond
	})
}

// A reference to a target (xds:///host:port names where to go, not what to
// call) sends a generated client's calls under the service of their path; a
// reference to an interface always calls that interface.
func TestWireServiceOfTargetsAndInterfaces(t *testing.T) {
	const target = "xds:///greeter.default.svc.cluster.local:20000"
	n := newNet()
	var paths []string
	var mu sync.Mutex
	n.handle("10.0.0.1:1", func(_ context.Context, info *call.Info, _ any) (any, error) {
		mu.Lock()
		defer mu.Unlock()
		paths = append(paths, info.Service+" "+info.Path())
		return "ok", nil
	})
	f := &registry.Feed{}
	snap, err := mesh.NewSnapshot(mesh.Spec{Services: []mesh.Service{
		{Name: target, Endpoints: []mesh.Endpoint{{Address: "10.0.0.1:1"}}},
		{Name: svc, Endpoints: []mesh.Endpoint{{Address: "10.0.0.1:1"}}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	f.Publish(func(registry.Key) *mesh.Snapshot { return snap })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, c := range []struct{ key, method string }{
		{target, "/greet.GreetService/Greet"},
		{svc, "/greet.GreetService/Greet"},
		{svc, "/other.Service/Greet"},
	} {
		r, err := consumer.New(registry.Key{Interface: c.key}, feedDiscovery{f}, n)
		if err != nil {
			t.Fatal(err)
		}
		var out string
		if err := r.Invoke(ctx, c.method, "hi", &out); err != nil {
			t.Fatalf("%s %s: %v", c.key, c.method, err)
		}
		r.Close()
	}
	want := []string{
		"greet.GreetService /greet.GreetService/Greet",
		"greet.GreetService /greet.GreetService/Greet",
		"greet.GreetService /greet.GreetService/Greet",
	}
	if !slices.Equal(paths, want) {
		t.Fatalf("calls went out as %q, want %q", paths, want)
	}
}

// gatedEngine delays its first Update until gate closes, and records a call
// that reached it before any Update had finished.
type gatedEngine struct {
	router.Engine
	entered, gate chan struct{}
	updated       atomic.Bool
	early         atomic.Int64
}

func (e *gatedEngine) Update(snap *mesh.Snapshot) error {
	if !e.updated.Load() {
		close(e.entered)
		<-e.gate
	}
	defer e.updated.Store(true)
	return e.Engine.Update(snap)
}

func (e *gatedEngine) Invoke(ctx context.Context, info *call.Info, req, resp any, invoke router.Invoker) error {
	if !e.updated.Load() {
		e.early.Add(1)
	}
	return e.Engine.Invoke(ctx, info, req, resp, invoke)
}

// TestCallsWaitForTheEngine makes a call while the first snapshot has
// reached the reference but not yet its engine: the call waits for the
// engine instead of running on an engine without routing state (which
// router-mesh answers with "no routing state yet").
func TestCallsWaitForTheEngine(t *testing.T) {
	n := newNet()
	n.handle("10.0.0.1:1", hello("10.0.0.1:1"))
	f := &registry.Feed{}
	e := &gatedEngine{Engine: router.Service(router.EngineOptions{}), entered: make(chan struct{}), gate: make(chan struct{})}
	r, err := consumer.New(registry.Key{Interface: svc}, feedDiscovery{f}, n, consumer.WithEngine(e))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	publish(t, f, service("1", "10.0.0.1:1"))
	<-e.entered
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := greet(ctx, r)
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	close(e.gate)
	if err := <-done; err != nil {
		t.Fatalf("call made while the engine took its first snapshot: %v", err)
	}
	if n := e.early.Load(); n != 0 {
		t.Errorf("%d call(s) reached the engine before its first Update finished", n)
	}
}

// Snapshot is nil before the first discovery state, then the state the
// reference routes by, following updates.
func TestSnapshot(t *testing.T) {
	n := newNet()
	f := &registry.Feed{}
	r, err := consumer.New(registry.Key{Interface: svc}, feedDiscovery{f}, n)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if s := r.Snapshot(); s != nil {
		t.Fatalf("before any state: revision %q", s.Revision())
	}
	publish(t, f, service("1", "10.0.0.1:1"))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := r.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	if s := r.Snapshot(); s == nil || s.Revision() != "1" {
		t.Fatalf("after the first state: %v", s)
	}
	publish(t, f, service("2", "10.0.0.1:1", "10.0.0.2:1"))
	eventually(t, "the second state", func() bool { return r.Snapshot().Revision() == "2" })
	if eps := r.Snapshot().Services()[0].Endpoints; len(eps) != 2 {
		t.Errorf("endpoints %v", eps)
	}
}
