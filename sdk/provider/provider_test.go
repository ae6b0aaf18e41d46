package provider_test

import (
	"context"
	"errors"
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

	"github.com/shoalmesh/shoal/sdk/call"
	"github.com/shoalmesh/shoal/sdk/consumer"
	"github.com/shoalmesh/shoal/sdk/filter"
	"github.com/shoalmesh/shoal/sdk/lifecycle"
	"github.com/shoalmesh/shoal/sdk/mesh"
	"github.com/shoalmesh/shoal/sdk/provider"
	"github.com/shoalmesh/shoal/sdk/registry"
	"github.com/shoalmesh/shoal/sdk/registry/file"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// memNet is an in-memory network of servers by address. A draining server
// refuses new calls as a connect failure (as an HTTP/2 GOAWAY does) and
// Shutdown waits for its in-flight calls.
type memNet struct {
	mu      sync.Mutex
	servers map[string]*memServer
}

type memServer struct {
	net      *memNet
	addr     string
	work     time.Duration
	draining atomic.Bool
	inflight sync.WaitGroup
	served   atomic.Int64
	mu       sync.Mutex
}

func (n *memNet) server(addr string, work time.Duration) *memServer {
	return &memServer{net: n, addr: addr, work: work}
}

func (s *memServer) Listen(context.Context) (net.Addr, error) {
	s.net.mu.Lock()
	defer s.net.mu.Unlock()
	s.net.servers[s.addr] = s
	return net.ResolveTCPAddr("tcp", s.addr)
}

func (s *memServer) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.draining.Store(true)
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.inflight.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		return ctx.Err()
	}
	s.net.mu.Lock()
	delete(s.net.servers, s.addr)
	s.net.mu.Unlock()
	return nil
}

func (s *memServer) serve(ctx context.Context) (string, error) {
	s.mu.Lock()
	if s.draining.Load() {
		s.mu.Unlock()
		return "", &call.Error{Code: call.Unavailable, Connect: true, Message: s.addr + " is shutting down"}
	}
	s.inflight.Add(1)
	s.mu.Unlock()
	defer s.inflight.Done()
	select {
	case <-time.After(s.work):
	case <-ctx.Done():
		return "", ctx.Err()
	}
	s.served.Add(1)
	return s.addr, nil
}

func (n *memNet) Dial(_ context.Context, ep *mesh.Endpoint) (consumer.Conn, error) {
	return &memConn{net: n, addr: ep.Address}, nil
}

type memConn struct {
	net  *memNet
	addr string
}

func (c *memConn) Invoke(ctx context.Context, _ *call.Info, _, resp any) error {
	c.net.mu.Lock()
	s := c.net.servers[c.addr]
	c.net.mu.Unlock()
	if s == nil {
		return &call.Error{Code: call.Unavailable, Connect: true, Message: "connection refused by " + c.addr}
	}
	out, err := s.serve(ctx)
	if err == nil {
		*resp.(*string) = out
	}
	return err
}

func (c *memConn) NewStream(context.Context, *call.Info) (filter.ClientStream, error) {
	return nil, call.Errorf(call.Unimplemented, "no streams")
}

func (c *memConn) Close() error { return nil }

var key = registry.Key{Interface: "greet.GreetService", Version: "1.0.0"}

// TestGracefulStopMidLoad is the end-to-end scenario of the sdk without
// the wire: two providers and a consumer in one process find each other
// through the file registry; one provider stops gracefully in the middle of
// the load, and no call fails.
func TestGracefulStopMidLoad(t *testing.T) {
	path := filepath.Join(t.TempDir(), "registry.yaml")
	reg, err := file.New(path, file.WithLogger(quiet), file.WithDebounce(time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	n := &memNet{servers: map[string]*memServer{}}
	a, b := n.server("127.0.0.1:50051", time.Millisecond), n.server("127.0.0.1:50052", time.Millisecond)

	var servingA []bool
	pa, err := provider.New([]provider.Service{{Key: key}}, []provider.Server{a}, []registry.Registrar{reg},
		provider.WithDrainDelay(100*time.Millisecond), provider.WithLogger(quiet),
		provider.WithServing(func(s bool) { servingA = append(servingA, s) }))
	if err != nil {
		t.Fatal(err)
	}
	pb, err := provider.New([]provider.Service{{Key: key}}, []provider.Server{b}, []registry.Registrar{reg}, provider.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, p := range []*provider.Provider{pa, pb} {
		if err := p.Start(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if !pa.Ready() {
		t.Error("provider not ready after Start")
	}
	// Consumers use a second registry on the file, as another process would.
	creg, err := file.New(path, file.WithLogger(quiet), file.WithDebounce(time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer creg.Close()
	ref, err := consumer.New(key, creg, n, consumer.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()

	var wg sync.WaitGroup
	var calls, failures atomic.Int64
	afterStop := map[string]int{}
	var mu sync.Mutex
	stopped := make(chan struct{})
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 400 {
				var out string
				if err := ref.Invoke(ctx, "Greet", "hi", &out); err != nil {
					failures.Add(1)
					t.Errorf("call failed: %v", err)
					continue
				}
				calls.Add(1)
				select {
				case <-stopped:
					mu.Lock()
					afterStop[out]++
					mu.Unlock()
				default:
				}
			}
		}()
	}
	for calls.Load() < 300 { // mid-load
		time.Sleep(time.Millisecond)
	}
	if err := pa.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	close(stopped)
	wg.Wait()
	if err := pb.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if failures.Load() != 0 {
		t.Fatalf("%d of %d calls failed", failures.Load(), calls.Load()+failures.Load())
	}
	if a.served.Load() == 0 || b.served.Load() == 0 {
		t.Errorf("served a=%d b=%d, want both to have served", a.served.Load(), b.served.Load())
	}
	if afterStop["127.0.0.1:50051"] != 0 || afterStop["127.0.0.1:50052"] == 0 {
		t.Errorf("after the stop: %v, want every call on the remaining provider", afterStop)
	}
	if len(servingA) != 2 || !servingA[0] || servingA[1] {
		t.Errorf("serving callbacks %v, want [true false]", servingA)
	}
	t.Logf("%d calls, a served %d, b served %d", calls.Load(), a.served.Load(), b.served.Load())
}

type failingRegistrar struct{ registry.Registrar }

func (failingRegistrar) Register(context.Context, registry.Instance) error {
	return errors.New("registry unreachable")
}

func (failingRegistrar) Deregister(context.Context, registry.Instance) error { return nil }

func TestStartFailureShutsServersDown(t *testing.T) {
	n := &memNet{servers: map[string]*memServer{}}
	s := n.server("127.0.0.1:50053", 0)
	p, err := provider.New([]provider.Service{{Key: key}}, []provider.Server{s}, []registry.Registrar{failingRegistrar{}}, provider.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	l := lifecycle.New(quiet)
	_ = l.Append(p.Hooks())
	err = l.Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), "register greet.GreetService:1.0.0 at 127.0.0.1:50053: registry unreachable") {
		t.Fatalf("Start error = %v", err)
	}
	if !s.draining.Load() || p.Ready() {
		t.Error("server left running after a failed start")
	}
}

type addrServer struct{ addr string }

func (s addrServer) Listen(context.Context) (net.Addr, error) {
	return net.ResolveTCPAddr("tcp", s.addr)
}
func (addrServer) Shutdown(context.Context) error { return nil }

type recordRegistrar struct{ got []registry.Instance }

func (r *recordRegistrar) Register(_ context.Context, i registry.Instance) error {
	r.got = append(r.got, i)
	return nil
}
func (*recordRegistrar) Deregister(context.Context, registry.Instance) error { return nil }

func TestAdvertisedAddress(t *testing.T) {
	tests := []struct {
		listen string
		opts   []provider.Option
		want   func(string) bool
	}{
		{"127.0.0.1:7000", nil, func(a string) bool { return a == "127.0.0.1:7000" }},
		{"0.0.0.0:7001", nil, func(a string) bool { h, p, _ := net.SplitHostPort(a); return p == "7001" && h != "0.0.0.0" }},
		{"0.0.0.0:7002", []provider.Option{provider.WithAdvertiseHost("10.1.2.3")}, func(a string) bool { return a == "10.1.2.3:7002" }},
	}
	for _, tt := range tests {
		rec := &recordRegistrar{}
		p, err := provider.New([]provider.Service{{Key: key, Weight: 5}}, []provider.Server{addrServer{tt.listen}}, []registry.Registrar{rec}, append(tt.opts, provider.WithLogger(quiet), provider.WithDrainDelay(0))...)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		if len(rec.got) != 1 || !tt.want(rec.got[0].Address) || rec.got[0].Weight != 5 {
			t.Errorf("listen %s: registered %+v", tt.listen, rec.got)
		}
		_ = p.Stop(context.Background())
	}
}

func TestNewValidates(t *testing.T) {
	_, err := provider.New([]provider.Service{{}}, nil, nil, provider.WithDrainDelay(-1))
	for _, want := range []string{"no server", "negative drain delay", "services[0]: registry: empty interface name"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v, want %q", err, want)
		}
	}
}

func TestServicesChooseServersAndRegistrars(t *testing.T) {
	all, only := &recordRegistrar{}, &recordRegistrar{}
	servers := []provider.Server{addrServer{"127.0.0.1:7101"}, addrServer{"127.0.0.1:7102"}}
	a := registry.Key{Interface: "a.A"}
	b := registry.Key{Interface: "b.B"}
	p, err := provider.New([]provider.Service{
		{Key: a}, // every server, every registrar
		{Key: b, Servers: []int{1}, Registrars: []registry.Registrar{only}}, // second server, one registrar
	}, servers, []registry.Registrar{all}, provider.WithLogger(quiet), provider.WithDrainDelay(0))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = p.Stop(context.Background()) }()
	got := func(r *recordRegistrar) string {
		var s []string
		for _, i := range r.got {
			s = append(s, i.Interface+"@"+i.Address)
		}
		return strings.Join(s, ",")
	}
	if g := got(all); g != "a.A@127.0.0.1:7101,a.A@127.0.0.1:7102" {
		t.Errorf("default registrar got %s", g)
	}
	if g := got(only); g != "b.B@127.0.0.1:7102" {
		t.Errorf("service registrar got %s", g)
	}
	if _, err := provider.New([]provider.Service{{Key: a, Servers: []int{2}}}, servers, nil); err == nil || !strings.Contains(err.Error(), "index 2 is out of range; there are 2 servers") {
		t.Errorf("bad server index: %v", err)
	}
}
