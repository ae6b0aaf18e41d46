package tri_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/shoalmesh/shoal/triple"

	"github.com/shoalmesh/shoal/sdk/app"
	"github.com/shoalmesh/shoal/sdk/call"
	"github.com/shoalmesh/shoal/sdk/config"
	"github.com/shoalmesh/shoal/sdk/filter"
	"github.com/shoalmesh/shoal/sdk/mesh"
	"github.com/shoalmesh/shoal/sdk/registry"
	"github.com/shoalmesh/shoal/sdk/tri"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// A hand-written service, as protoc-gen-go-triple would generate it, so the
// sdk's tests need no generated module.
type echoer interface {
	Echo(context.Context, *wrapperspb.StringValue) (*wrapperspb.StringValue, error)
}

var echoDesc = triple.ServiceDesc{
	ServiceName: "test.Echo",
	HandlerType: (*echoer)(nil),
	Streams: []triple.StreamDesc{{
		StreamName:    "Chat",
		ClientStreams: true,
		ServerStreams: true,
		Handler: func(srv any, stream triple.ServerStream) error {
			return srv.(*echo).Chat(&triple.GenericServerStream[wrapperspb.StringValue, wrapperspb.StringValue]{ServerStream: stream})
		},
	}},
	Methods: []triple.MethodDesc{{
		MethodName: "Echo",
		Handler: func(srv any, ctx context.Context, dec func(any) error, ic triple.UnaryServerInterceptor) (any, error) {
			req := new(wrapperspb.StringValue)
			if err := dec(req); err != nil {
				return nil, err
			}
			if ic == nil {
				return srv.(echoer).Echo(ctx, req)
			}
			return ic(ctx, req, &triple.UnaryServerInfo{Server: srv, FullMethod: "/test.Echo/Echo"}, func(ctx context.Context, req any) (any, error) {
				return srv.(echoer).Echo(ctx, req.(*wrapperspb.StringValue))
			})
		},
	}},
}

type echo struct {
	name   string
	work   time.Duration
	served atomic.Int64
	// chatFail makes Chat fail with UNAVAILABLE: "at once" before
	// answering anything (a status alone), "after one" after answering
	// the first message.
	chatFail string
	chats    atomic.Int64
}

func (e *echo) Echo(ctx context.Context, req *wrapperspb.StringValue) (*wrapperspb.StringValue, error) {
	if e.work > 0 {
		select {
		case <-time.After(e.work):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	e.served.Add(1)
	_ = triple.SetHeader(ctx, triple.Metadata{"x-served-by": {e.name}})
	_ = triple.SetTrailer(ctx, triple.Metadata{"x-done": {"yes"}})
	md, _ := triple.FromIncomingContext(ctx)
	return wrapperspb.String(fmt.Sprintf("%s from %s for %s", req.GetValue(), e.name, md.Get("x-user"))), nil
}

// Chat answers every message until the client closes its side.
func (e *echo) Chat(st triple.BidiStreamServer[wrapperspb.StringValue, wrapperspb.StringValue]) error {
	e.chats.Add(1)
	if e.chatFail == "at once" {
		return triple.NewError(triple.CodeUnavailable, e.name+" refuses streams")
	}
	for n := 0; ; n++ {
		if e.chatFail == "after one" && n == 1 {
			return triple.NewError(triple.CodeUnavailable, e.name+" broke mid-stream")
		}
		m, err := st.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := st.Send(wrapperspb.String(m.GetValue() + " from " + e.name)); err != nil {
			return err
		}
	}
}

func noEnv(string) (string, bool) { return "", false }

func providerApp(t *testing.T, reg string, impl *echo, opts ...app.Option) *app.App {
	t.Helper()
	cfg, err := config.Load(config.WithEnv(noEnv), config.WithoutFile(),
		config.WithApplicationName(impl.name),
		config.WithRegistry(config.Registry{Name: "local", Kind: "file", Address: reg}),
		config.WithProtocol(config.Protocol{Host: "127.0.0.1", Port: 0}),
		config.WithService(config.Service{Interface: "test.Echo", Version: "1.0.0"}))
	if err != nil {
		t.Fatal(err)
	}
	a, err := app.New(cfg, append([]app.Option{
		app.WithLogger(quiet), app.WithDrainDelay(200 * time.Millisecond),
		app.WithServers(tri.NewServers([]tri.Export{{Desc: &echoDesc, Impl: impl, Version: "1.0.0"}}, triple.WithLogger(quiet)).Factory()),
	}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func consumerApp(t *testing.T, reg string, opts ...app.Option) *app.App {
	t.Helper()
	cfg, err := config.Load(config.WithEnv(noEnv), config.WithoutFile(),
		config.WithApplicationName("client"),
		config.WithRegistry(config.Registry{Name: "local", Kind: "file", Address: reg}),
		config.WithReference(config.Reference{Name: "echo", Interface: "test.Echo", Version: "1.0.0", Timeout: config.Duration(20 * time.Second)}))
	if err != nil {
		t.Fatal(err)
	}
	a, err := app.New(cfg, append([]app.Option{app.WithLogger(quiet), app.WithTransport(tri.NewTransport(triple.WithApplication("client")))}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func call1(ctx context.Context, c *tri.Client, user string) (string, error) {
	out := new(wrapperspb.StringValue)
	err := c.Invoke(triple.AppendToOutgoingContext(ctx, "x-user", user), "/test.Echo/Echo", wrapperspb.String("hi"), out)
	return out.GetValue(), err
}

func TestUnaryOverLoopback(t *testing.T) {
	reg := filepath.Join(t.TempDir(), "registry.yaml")
	var seen []string
	var mu sync.Mutex
	audit := filter.Server{Name: "audit", Unary: func(ctx context.Context, info *call.Info, req any, next filter.UnaryHandler) (any, error) {
		mu.Lock()
		seen = append(seen, info.Path()+" "+info.Version+" "+info.Attachments["x-user"])
		mu.Unlock()
		return next(ctx, info, req)
	}}
	p := providerApp(t, reg, &echo{name: "p1"}, app.WithServerFilters(audit))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = p.Stop(ctx) }()
	c := consumerApp(t, reg)
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Stop(ctx) }()
	ref, err := c.Reference("echo")
	if err != nil {
		t.Fatal(err)
	}
	out, err := call1(ctx, tri.NewClient(ref), "alice")
	if err != nil || out != "hi from p1 for alice" {
		t.Fatalf("call: %q, %v", out, err)
	}
	var hdr, trl triple.Metadata
	if _, err := call1(tri.WithResponseMetadata(ctx, &hdr, &trl), tri.NewClient(ref), "bob"); err != nil {
		t.Fatal(err)
	}
	if hdr.Get("x-served-by") != "p1" || trl.Get("x-done") != "yes" {
		t.Errorf("response metadata through the reference: header %v, trailer %v; want x-served-by p1, x-done yes", hdr, trl)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 2 || seen[0] != "/test.Echo/Echo 1.0.0 alice" {
		t.Errorf("server filter saw %v", seen)
	}
}

func TestWrongGroupIsUnimplementedAndDeadPortFailsOver(t *testing.T) {
	// A provider at a dead port and one alive: failover hides the dead one.
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := dead.Addr().String()
	dead.Close()
	srv := triple.NewServer(triple.WithLogger(quiet))
	if err := srv.Register(&echoDesc, &echo{name: "live"}, triple.ServiceVersion("1.0.0")); err != nil {
		t.Fatal(err)
	}
	s := tri.NewServer(srv, "127.0.0.1", 0)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	addr, err := s.Listen(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Shutdown(ctx) }()
	cfg, err := config.Load(config.WithEnv(noEnv), config.WithoutFile(), config.WithRegistry(config.Registry{Name: "r", Kind: "file", Address: filepath.Join(t.TempDir(), "r.yaml")}),
		config.WithReference(config.Reference{Name: "v1", Interface: "test.Echo", Version: "1.0.0", URL: "tri://" + deadAddr + ",tri://" + addr.String()}),
		config.WithReference(config.Reference{Name: "blue", Interface: "test.Echo", Group: "blue", Version: "1.0.0", URL: "tri://" + addr.String()}))
	if err != nil {
		t.Fatal(err)
	}
	c, err := app.New(cfg, app.WithLogger(quiet), app.WithTransport(tri.NewTransport()))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Stop(ctx) }()
	v1, _ := c.Reference("v1")
	for i := range 20 {
		if out, err := call1(ctx, tri.NewClient(v1), "bob"); err != nil || out != "hi from live for bob" {
			t.Fatalf("call %d: %q, %v", i, out, err)
		}
	}
	// Dubbo's lookup never falls back across groups: the group reaches the
	// server as tri-service-group and finds nothing.
	blue, _ := c.Reference("blue")
	_, err = call1(ctx, tri.NewClient(blue), "bob")
	if triple.CodeOf(err) != triple.CodeUnimplemented || call.CodeOf(err) != call.Unimplemented {
		t.Errorf("group blue: %v, want UNIMPLEMENTED in both code spaces", err)
	}
}

// TestGracefulStopMidLoad is the acceptance scenario over the wire: a
// provider and a consumer in one process over loopback via the file
// registry; one of two providers is stopped gracefully mid-load, and no
// in-flight or later call fails.
func TestGracefulStopMidLoad(t *testing.T) {
	reg := filepath.Join(t.TempDir(), "registry.yaml")
	e1, e2 := &echo{name: "p1", work: time.Millisecond}, &echo{name: "p2", work: time.Millisecond}
	p1, p2 := providerApp(t, reg, e1), providerApp(t, reg, e2)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, p := range []*app.App{p1, p2} {
		if err := p.Start(ctx); err != nil {
			t.Fatal(err)
		}
	}
	c := consumerApp(t, reg)
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Stop(ctx) }()
	ref, _ := c.Reference("echo")
	client := tri.NewClient(ref)

	var calls, failures atomic.Int64
	var wg sync.WaitGroup
	stopped := make(chan struct{})
	var afterStop sync.Map
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 300 {
				out, err := call1(ctx, client, fmt.Sprintf("u%d-%d", g, i))
				if err != nil {
					failures.Add(1)
					t.Errorf("call failed: %v", err)
					continue
				}
				calls.Add(1)
				select {
				case <-stopped:
					from := strings.Fields(out)[2]
					v, _ := afterStop.LoadOrStore(from, new(atomic.Int64))
					v.(*atomic.Int64).Add(1)
				default:
				}
			}
		}()
	}
	for calls.Load() < 400 {
		time.Sleep(time.Millisecond)
	}
	if err := p1.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	close(stopped)
	wg.Wait()
	if err := p2.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if failures.Load() != 0 {
		t.Fatalf("%d of %d calls failed", failures.Load(), calls.Load()+failures.Load())
	}
	if v, ok := afterStop.Load("p1"); ok && v.(*atomic.Int64).Load() > 0 {
		t.Errorf("p1 answered %d calls after its Stop returned", v.(*atomic.Int64).Load())
	}
	t.Logf("%d calls; p1 served %d, p2 served %d", calls.Load(), e1.served.Load(), e2.served.Load())
	if e1.served.Load() == 0 || e2.served.Load() == 0 {
		t.Errorf("both providers should have served: p1 %d, p2 %d", e1.served.Load(), e2.served.Load())
	}
}

func TestHealthFollowsReadiness(t *testing.T) {
	reg := filepath.Join(t.TempDir(), "registry.yaml")
	servers := tri.NewServers([]tri.Export{{Desc: &echoDesc, Impl: &echo{name: "h"}, Version: "1.0.0"}}, triple.WithLogger(quiet))
	cfg, err := config.Load(config.WithEnv(noEnv), config.WithoutFile(),
		config.WithRegistry(config.Registry{Name: "local", Kind: "file", Address: reg}),
		config.WithProtocol(config.Protocol{Host: "127.0.0.1", Port: 0}),
		config.WithService(config.Service{Interface: "test.Echo", Version: "1.0.0"}))
	if err != nil {
		t.Fatal(err)
	}
	var states []bool
	p, err := app.New(cfg, app.WithLogger(quiet), app.WithDrainDelay(0), app.WithServers(servers.Factory()),
		app.WithServing(func(b bool) { states = append(states, b); servers.SetServing(b) }))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	r, _ := p.Registry("local")
	w, _ := r.Watch(ctx, registry.Key{Interface: "test.Echo", Version: "1.0.0"})
	defer w.Close()
	snap, err := w.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := snap.Cluster(mesh.Destination{Service: "test.Echo"})
	cc, err := triple.Dial(c.Ready()[0].Address)
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	check := func() healthpb.HealthCheckResponse_ServingStatus {
		out := new(healthpb.HealthCheckResponse)
		if err := cc.Invoke(ctx, "/grpc.health.v1.Health/Check", &healthpb.HealthCheckRequest{Service: "test.Echo"}, out); err != nil {
			t.Fatal(err)
		}
		return out.GetStatus()
	}
	if got := check(); got != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("after Start: %v", got)
	}
	servers.SetServing(false) // what Stop does first, before deregistering
	if got := check(); got != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Errorf("after SetServing(false): %v", got)
	}
	if err := p.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if len(states) != 2 || !states[0] || states[1] {
		t.Errorf("serving callbacks %v, want [true false]", states)
	}
}

func TestBidiStreamThroughReferenceAndFilters(t *testing.T) {
	reg := filepath.Join(t.TempDir(), "registry.yaml")
	var mu sync.Mutex
	var events []string
	note := func(e string) {
		mu.Lock()
		events = append(events, e)
		mu.Unlock()
	}
	srvFilter := filter.Server{Name: "audit", Stream: func(ctx context.Context, info *call.Info, ss filter.ServerStream, next filter.StreamHandler) error {
		note("server " + info.Path() + " " + info.Attachments["x-user"])
		return next(ctx, info, ss)
	}}
	cliFilter := filter.Client{Name: "stamp", Stream: func(ctx context.Context, info *call.Info, next filter.StreamInvoker) (filter.ClientStream, error) {
		note("client " + info.Path())
		info.Attachments = info.Attachments.Clone().Set("x-user", "carol")
		return next(ctx, info)
	}}
	p := providerApp(t, reg, &echo{name: "s1"}, app.WithServerFilters(srvFilter))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = p.Stop(ctx) }()
	c := consumerApp(t, reg, app.WithClientFilters(cliFilter))
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Stop(ctx) }()
	ref, _ := c.Reference("echo")
	if err := ref.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	st, err := tri.NewClient(ref).NewStream(ctx, &echoDesc.Streams[0], "/test.Echo/Chat")
	if err != nil {
		t.Fatal(err)
	}
	chat := &triple.GenericClientStream[wrapperspb.StringValue, wrapperspb.StringValue]{ClientStream: st}
	for _, m := range []string{"a", "b", "c"} {
		if err := chat.Send(wrapperspb.String(m)); err != nil {
			t.Fatal(err)
		}
		got, err := chat.Recv()
		if err != nil || got.GetValue() != m+" from s1" {
			t.Fatalf("recv %q: %v, %v", m, got, err)
		}
	}
	if err := chat.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if _, err := chat.Recv(); !errors.Is(err, io.EOF) {
		t.Fatalf("end of stream: %v, want io.EOF", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(events, "; ") != "client /test.Echo/Chat; server /test.Echo/Chat carol" {
		t.Errorf("filters saw: %v", events)
	}
}

// TestInFlightCallsSurviveGracefulStop: the only provider stops while
// calls are in flight on it; every one of them completes.
func TestInFlightCallsSurviveGracefulStop(t *testing.T) {
	reg := filepath.Join(t.TempDir(), "registry.yaml")
	impl := &echo{name: "only", work: 150 * time.Millisecond}
	p := providerApp(t, reg, impl)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	c := consumerApp(t, reg)
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Stop(ctx) }()
	ref, _ := c.Reference("echo")
	if err := ref.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	client := tri.NewClient(ref)
	const n = 20
	errs := make(chan error, n)
	for i := range n {
		go func() {
			_, err := call1(ctx, client, fmt.Sprint(i))
			errs <- err
		}()
	}
	time.Sleep(50 * time.Millisecond) // the calls are on the server now
	if err := p.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	for range n {
		if err := <-errs; err != nil {
			t.Errorf("in-flight call failed: %v", err)
		}
	}
	if impl.served.Load() != n {
		t.Errorf("served %d of %d in-flight calls", impl.served.Load(), n)
	}
}
