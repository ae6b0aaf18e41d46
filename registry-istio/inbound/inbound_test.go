package inbound_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	rbacv3 "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/shoalmesh/shoal/triple"

	"github.com/shoalmesh/shoal/registry-istio/bootstrap"
	"github.com/shoalmesh/shoal/registry-istio/inbound"
	"github.com/shoalmesh/shoal/registry-istio/xdsclient"
	"github.com/shoalmesh/shoal/registry-istio/xdstest"
)

const waitTimeout = 10 * time.Second

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// greeter is a two-method service on wrapper messages: Greet answers at
// once, Hold blocks until released (a long call that must survive a policy
// change).
type greeter struct {
	release chan struct{}
	holding atomic.Int64
}

func (g *greeter) greet(_ context.Context, in *wrapperspb.StringValue) (*wrapperspb.StringValue, error) {
	return wrapperspb.String("hello " + in.GetValue()), nil
}

func unary(name string, f func(*greeter, context.Context, *wrapperspb.StringValue) (*wrapperspb.StringValue, error)) triple.MethodDesc {
	return triple.MethodDesc{MethodName: name, Handler: func(srv any, ctx context.Context, dec func(any) error, ic triple.UnaryServerInterceptor) (any, error) {
		in := &wrapperspb.StringValue{}
		if err := dec(in); err != nil {
			return nil, err
		}
		h := func(ctx context.Context, req any) (any, error) {
			return f(srv.(*greeter), ctx, req.(*wrapperspb.StringValue))
		}
		if ic == nil {
			return h(ctx, in)
		}
		return ic(ctx, in, &triple.UnaryServerInfo{Server: srv, FullMethod: "/greet.GreetService/" + name}, h)
	}}
}

var greetDesc = triple.ServiceDesc{
	ServiceName: "greet.GreetService",
	HandlerType: (*any)(nil),
	Methods: []triple.MethodDesc{
		unary("Greet", (*greeter).greet),
		unary("Admin", (*greeter).greet),
		unary("Hold", func(g *greeter, ctx context.Context, in *wrapperspb.StringValue) (*wrapperspb.StringValue, error) {
			g.holding.Add(1)
			select {
			case <-g.release:
				return wrapperspb.String("held " + in.GetValue()), nil
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}),
	},
}

type fixture struct {
	xds    *xdstest.Server
	guard  *inbound.Guard
	addr   string
	port   uint32
	client *triple.ClientConn
	g      *greeter
}

// newFixture serves greet.GreetService behind a Guard on 127.0.0.1, with
// an in-process xDS server standing in for istiod (xdstest, builders
// shaped like istiod's inbound listener).
func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{xds: xdstest.NewServer(t), g: &greeter{release: make(chan struct{})}}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.addr = lis.Addr().String()
	f.port = uint32(lis.Addr().(*net.TCPAddr).Port)
	c, err := xdsclient.New(&bootstrap.Config{ServerURI: f.xds.Address(), Node: bootstrap.Identity{
		PodName: "greeter-0", Namespace: "default", IPs: []string{"127.0.0.1"},
	}.Node()}, xdsclient.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	f.guard = inbound.New(c, nil, inbound.WithLogger(quiet))
	glis, err := f.guard.Listen(lis)
	if err != nil {
		t.Fatal(err)
	}
	srv := triple.NewServer(triple.WithLogger(quiet),
		triple.WithUnaryInterceptors(f.guard.UnaryServerInterceptor()),
		triple.WithStreamInterceptors(f.guard.StreamServerInterceptor()))
	if err := srv.Register(&greetDesc, f.g); err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(glis) }()
	f.client, err = triple.Dial(f.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = f.client.Close()
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		_ = srv.Shutdown(ctx)
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
		f.guard.Close()
		_ = c.Close()
	})
	return f
}

// set serves the listener and waits until the guard applied it.
func (f *fixture) set(t *testing.T, l *listenerv3.Listener) {
	t.Helper()
	w := f.guard.Watcher(int(f.port))
	changed := w.Changed()
	f.xds.Set(xdstest.Resources{Listeners: []*listenerv3.Listener{l}})
	select {
	case <-changed:
	case <-time.After(waitTimeout):
		t.Fatalf("the guard did not apply the new listener within %v; state %+v", waitTimeout, w.State())
	}
}

func (f *fixture) call(method string) error {
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	out := &wrapperspb.StringValue{}
	return f.client.Invoke(ctx, "/greet.GreetService/"+method, wrapperspb.String("x"), out)
}

func denyAdmin() *listenerv3.Listener {
	return xdstest.InboundListener("127.0.0.1", 0, false, xdstest.RBACFilter(rbacv3.RBAC_DENY, map[string]*rbacv3.Policy{
		"default-deny-admin-0": xdstest.RBACPolicy([]*rbacv3.Permission{xdstest.PathExact("/greet.GreetService/Admin")}, nil),
	}))
}

func (f *fixture) listener(l *listenerv3.Listener) *listenerv3.Listener {
	l.Name = xdstest.InboundListenerName("127.0.0.1", f.port)
	l.Address.GetSocketAddress().PortSpecifier = xdstest.InboundListener("127.0.0.1", f.port, false).Address.GetSocketAddress().PortSpecifier
	return l
}

// TestPlaintextAndRBAC: a plaintext listener serves; a DENY on one method
// refuses that method only, with PERMISSION_DENIED naming the policy; an
// ALLOW only for one path refuses the rest; removing the policies serves
// everything again.
func TestPlaintextAndRBAC(t *testing.T) {
	f := newFixture(t)
	f.set(t, f.listener(xdstest.InboundListener("127.0.0.1", 0, false)))
	if st := f.guard.Watcher(int(f.port)).State(); st.Mode != inbound.Plaintext {
		t.Fatalf("mode %v, want plaintext", st.Mode)
	}
	for _, m := range []string{"Greet", "Admin"} {
		if err := f.call(m); err != nil {
			t.Fatalf("%s without policies: %v", m, err)
		}
	}
	f.set(t, f.listener(denyAdmin()))
	if err := f.call("Greet"); err != nil {
		t.Fatalf("Greet under a DENY on Admin: %v", err)
	}
	err := f.call("Admin")
	if triple.CodeOf(err) != triple.CodePermissionDenied || !strings.Contains(err.Error(), "default-deny-admin-0") {
		t.Fatalf("Admin under a DENY on Admin: %v, want PERMISSION_DENIED naming default-deny-admin-0", err)
	}
	f.set(t, f.listener(xdstest.InboundListener("127.0.0.1", 0, false, xdstest.RBACFilter(rbacv3.RBAC_ALLOW, map[string]*rbacv3.Policy{
		"default-allow-greet-0": xdstest.RBACPolicy([]*rbacv3.Permission{xdstest.PathExact("/greet.GreetService/Greet")}, nil),
	}))))
	if err := f.call("Greet"); err != nil {
		t.Fatalf("Greet under an ALLOW of Greet: %v", err)
	}
	if err := f.call("Admin"); triple.CodeOf(err) != triple.CodePermissionDenied || !strings.Contains(err.Error(), "default-allow-greet-0") {
		t.Fatalf("Admin under an ALLOW of Greet: %v, want PERMISSION_DENIED naming the ALLOW policy", err)
	}
	f.set(t, f.listener(xdstest.InboundListener("127.0.0.1", 0, false)))
	if err := f.call("Admin"); err != nil {
		t.Fatalf("Admin after the policies went: %v", err)
	}
}

// TestPolicyChangeKeepsRunningCalls: a DENY on the method of calls that are
// running does not end them (the check is at the start of a call), and
// while the policies change ten times the permitted method keeps being
// served and the denied one refused.
func TestPolicyChangeKeepsRunningCalls(t *testing.T) {
	f := newFixture(t)
	f.set(t, f.listener(xdstest.InboundListener("127.0.0.1", 0, false)))
	const held = 4
	var wg sync.WaitGroup
	errs := make(chan error, held)
	started := make(chan struct{}, held)
	for range held {
		wg.Add(1)
		go func() {
			defer wg.Done()
			started <- struct{}{}
			errs <- f.call("Hold")
		}()
	}
	for range held {
		<-started
	}
	// Wait until the calls are in their handler: Hold's interceptor ran.
	deadline := time.Now().Add(waitTimeout)
	for f.heldCalls() < held && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if n := f.heldCalls(); n < held {
		t.Fatalf("%d of %d Hold calls reached the handler within %v", n, held, waitTimeout)
	}
	hold := f.listener(xdstest.InboundListener("127.0.0.1", 0, false, xdstest.RBACFilter(rbacv3.RBAC_DENY, map[string]*rbacv3.Policy{
		"default-deny-hold-0": xdstest.RBACPolicy([]*rbacv3.Permission{xdstest.PathExact("/greet.GreetService/Hold")}, nil),
	})))
	f.set(t, hold)
	if err := f.call("Hold"); triple.CodeOf(err) != triple.CodePermissionDenied {
		t.Fatalf("a new Hold under the DENY: %v, want PERMISSION_DENIED", err)
	}
	for i := range 10 {
		l, denied := hold, "Hold"
		if i%2 == 0 {
			l, denied = f.listener(denyAdmin()), "Admin"
		}
		f.set(t, l)
		if err := f.call("Greet"); err != nil {
			t.Fatalf("Greet after policy change %d: %v", i, err)
		}
		if denied == "Admin" {
			if err := f.call("Admin"); triple.CodeOf(err) != triple.CodePermissionDenied {
				t.Fatalf("Admin after policy change %d: %v, want PERMISSION_DENIED", i, err)
			}
		}
	}
	close(f.g.release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("a Hold call running when its method was denied failed: %v", err)
		}
	}
}

// TestNotServing: before istiod's first answer connections wait; with no
// listener for the address the server closes connections and calls fail
// UNAVAILABLE; STRICT without an identity.Source is not served either and
// says why; a NACKed later version keeps the last good listener.
func TestNotServing(t *testing.T) {
	f := newFixture(t)
	f.xds.Set(xdstest.Resources{})
	w := f.guard.Watcher(int(f.port))
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := w.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	if st := w.State(); st.Mode != inbound.NotServing || !strings.Contains(st.Reason, "no listener") {
		t.Fatalf("state %+v, want not serving because istiod has no listener", st)
	}
	if err := f.call("Greet"); triple.CodeOf(err) != triple.CodeUnavailable {
		t.Fatalf("call while not serving: %v, want UNAVAILABLE", err)
	}
	f.set(t, f.listener(xdstest.InboundListener("127.0.0.1", 0, true)))
	if st := w.State(); st.Mode != inbound.NotServing || !strings.Contains(st.Reason, "identity.Source") {
		t.Fatalf("STRICT without a Source: %+v, want not serving naming identity.Source", st)
	}
	f.set(t, f.listener(denyAdmin()))
	if err := f.call("Greet"); err != nil {
		t.Fatalf("Greet after a plaintext listener came: %v", err)
	}
	// A version this server cannot enforce (a JWT principal) is NACKed; the
	// DENY on Admin stays.
	bad := f.listener(xdstest.InboundListener("127.0.0.1", 0, false, xdstest.RBACFilter(rbacv3.RBAC_ALLOW, map[string]*rbacv3.Policy{
		"default-jwt-0": xdstest.RBACPolicy(nil, []*rbacv3.Principal{{Identifier: &rbacv3.Principal_Metadata{}}}),
	})))
	f.xds.Set(xdstest.Resources{Listeners: []*listenerv3.Listener{bad}})
	deadline := time.Now().Add(waitTimeout)
	for !f.nacked() && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if !f.nacked() {
		t.Fatal("the listener with a JWT principal was not NACKed")
	}
	if err := f.call("Admin"); triple.CodeOf(err) != triple.CodePermissionDenied {
		t.Fatalf("Admin after a NACKed version: %v, want the last good DENY", err)
	}
	if err := f.call("Greet"); err != nil {
		t.Fatalf("Greet after a NACKed version: %v", err)
	}
}

func (f *fixture) heldCalls() int64 { return f.g.holding.Load() }

func (f *fixture) nacked() bool {
	for _, r := range f.xds.Requests() {
		if r.IsNACK() && strings.Contains(r.ErrorDetail, "metadata principals") {
			return true
		}
	}
	return false
}

// TestServingAddress: a listener bound to all interfaces is watched under
// the node's IP.
func TestServingAddress(t *testing.T) {
	srv := xdstest.NewServer(t)
	c, err := xdsclient.New(&bootstrap.Config{ServerURI: srv.Address(), Node: bootstrap.Identity{
		PodName: "greeter-0", Namespace: "default", IPs: []string{"10.1.2.3"},
	}.Node()}, xdsclient.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	g := inbound.New(c, nil, inbound.WithLogger(quiet))
	defer g.Close()
	for in, want := range map[string]string{"0.0.0.0:20000": "10.1.2.3:20000", "[::]:20000": "10.1.2.3:20000", "127.0.0.5:7": "127.0.0.5:7"} {
		a, _ := net.ResolveTCPAddr("tcp", in)
		got, err := g.ServingAddress(a)
		if err != nil || got != want {
			t.Fatalf("ServingAddress(%s) = %q, %v; want %q", in, got, err, want)
		}
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = lis.Close() }()
	gl, err := g.Listen(lis)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.Listen(lis); err == nil || !strings.Contains(err.Error(), "already guarded") {
		t.Fatalf("guarding a port twice: %v", err)
	}
	port := lis.Addr().(*net.TCPAddr).Port
	if name := g.Watcher(port).Name(); name != "xds.istio.io/grpc/lds/inbound/127.0.0.1:"+strconv.Itoa(port) {
		t.Fatalf("watched %q", name)
	}
	_ = gl.Close()
}
