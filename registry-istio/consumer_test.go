package registryistio_test

import (
	"context"
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
