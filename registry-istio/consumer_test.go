package registryistio_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/shoalmesh/shoal/registry-istio/xdstest"
	"github.com/shoalmesh/shoal/sdk/call"
	"github.com/shoalmesh/shoal/sdk/consumer"
	"github.com/shoalmesh/shoal/sdk/filter"
	"github.com/shoalmesh/shoal/sdk/mesh"
	"github.com/shoalmesh/shoal/sdk/registry"
)

// answerTransport is an in-memory transport: each endpoint answers with its
// own address, and every dial is recorded.
type answerTransport struct {
	mu    sync.Mutex
	dials []string
}

func (a *answerTransport) Dial(_ context.Context, ep *mesh.Endpoint) (consumer.Conn, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.dials = append(a.dials, ep.Address)
	return answerConn(ep.Address), nil
}

type answerConn string

func (c answerConn) Invoke(_ context.Context, _ *call.Info, _, resp any) error {
	*resp.(*string) = string(c)
	return nil
}

func (answerConn) NewStream(context.Context, *call.Info) (filter.ClientStream, error) {
	return nil, call.Errorf(call.Unimplemented, "no streams here")
}

func (answerConn) Close() error { return nil }

// The sdk's consumer, given this registry, calls a provider it knows only by
// interface name: istiod's resources for the interface's host lead it to the
// provider's address.
func TestSDKConsumerCallsByInterfaceName(t *testing.T) {
	srv := xdstest.NewServer(t)
	srv.Set(xdstest.Service(seHost, 50051, xdstest.Endpoint{IP: "127.0.0.1", Port: 20000}))
	r := newRegistry(t, srv)
	tr := &answerTransport{}
	ref, err := consumer.New(registry.Key{Interface: "greet.GreetService"}, r, tr, consumer.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var got string
	if err := ref.Invoke(ctx, "Greet", "hello", &got); err != nil {
		t.Fatal(err)
	}
	if got != "127.0.0.1:20000" {
		t.Fatalf("answered by %q, want the provider istiod serves", got)
	}

	// The provider moves; the next calls follow istiod.
	srv.Set(xdstest.Service(seHost, 50051, xdstest.Endpoint{IP: "127.0.0.2", Port: 20000}))
	deadline := time.Now().Add(10 * time.Second)
	for got != "127.0.0.2:20000" {
		if time.Now().After(deadline) {
			t.Fatalf("still answered by %q", got)
		}
		time.Sleep(10 * time.Millisecond)
		if err := ref.Invoke(ctx, "Greet", "hello", &got); err != nil {
			t.Fatal(err)
		}
	}
}

// serviceConn answers with its address and the service the call named, so
// a test sees where a call went and what it asked for.
type serviceConn string

func (c serviceConn) Invoke(_ context.Context, info *call.Info, _, resp any) error {
	*resp.(*string) = string(c) + " " + info.FullMethod
	return nil
}

func (serviceConn) NewStream(context.Context, *call.Info) (filter.ClientStream, error) {
	return nil, call.Errorf(call.Unimplemented, "no streams here")
}

func (serviceConn) Close() error { return nil }

type serviceTransport struct{}

func (serviceTransport) Dial(_ context.Context, ep *mesh.Endpoint) (consumer.Conn, error) {
	return serviceConn(ep.Address), nil
}

// The sdk's consumer with an app-level reference (providedBy: greeter)
// calls the application's Service host, not the interface's ServiceEntry
// host, and still names the interface in the call's path.
func TestSDKConsumerCallsByProvidingApplication(t *testing.T) {
	srv := xdstest.NewServer(t)
	srv.Set(xdstest.Service("greeter.default.svc.cluster.local", 50051, xdstest.Endpoint{IP: "127.0.0.7", Port: 20000}).Merge(
		xdstest.Service(seHost, 50051, xdstest.Endpoint{IP: "127.0.0.8", Port: 20000})))
	r := newRegistry(t, srv)
	ref, err := consumer.New(registry.Key{Interface: "greet.GreetService", ProvidedBy: "greeter"}, r, serviceTransport{}, consumer.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var got string
	if err := ref.Invoke(ctx, "/greet.GreetService/Greet", "hello", &got); err != nil {
		t.Fatal(err)
	}
	if got != "127.0.0.7:20000 /greet.GreetService/Greet" {
		t.Fatalf("answered %q, want the greeter Service's endpoint called on /greet.GreetService/Greet", got)
	}

	// An application istiod does not know: calls fail fast, saying so.
	none, err := consumer.New(registry.Key{Interface: "greet.GreetService", ProvidedBy: "nobody"}, r, serviceTransport{}, consumer.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	defer none.Close()
	err = none.Invoke(ctx, "Greet", "hello", &got)
	if ce := (*call.Error)(nil); !errors.As(err, &ce) || ce.Code != call.Unavailable {
		t.Fatalf("call to an unknown application: %v, want UNAVAILABLE", err)
	}
	t.Logf("unknown application: %v", err)
}
