package consumer_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shoalmesh/shoal/sdk/cluster"
	"github.com/shoalmesh/shoal/sdk/consumer"
	"github.com/shoalmesh/shoal/sdk/mesh"
	"github.com/shoalmesh/shoal/sdk/registry"
)

// tlsNet is memNet that also dials secured connections, recording the TLS
// each dial was asked for ("" for plaintext).
type tlsNet struct {
	*memNet
	mu    sync.Mutex
	dials []string
}

func (n *tlsNet) Dial(ctx context.Context, ep *mesh.Endpoint) (consumer.Conn, error) {
	n.record("")
	return n.memNet.Dial(ctx, ep)
}

func (n *tlsNet) DialTLS(ctx context.Context, ep *mesh.Endpoint, t *mesh.TLS) (consumer.Conn, error) {
	n.record(t.Key())
	return n.memNet.Dial(ctx, ep)
}

func (n *tlsNet) record(k string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.dials = append(n.dials, k)
}

func (n *tlsNet) dialled() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]string(nil), n.dials...)
}

func withTLS(spec mesh.Spec, t *mesh.TLS) mesh.Spec {
	spec.Services[0].Policy.TLS = t
	return spec
}

// A cluster's TLS decides how its endpoints are dialled; a change of it
// (a DestinationRule applied, then removed) dials the same address anew
// and retires the old connection.
func TestClusterTLSSwitchesConnections(t *testing.T) {
	const addr = "10.0.0.1:50051"
	mutual := &mesh.TLS{Mode: mesh.TLSIstioMutual, PeerIDs: []string{"spiffe://cluster.local/ns/default/sa/greeter"}}
	n := &tlsNet{memNet: newNet()}
	n.handle(addr, hello(addr))
	f := &registry.Feed{}
	publish(t, f, service("1", addr))
	r, err := consumer.New(registry.Key{Interface: svc}, feedDiscovery{f}, n, consumer.WithRetireGrace(time.Millisecond), consumer.WithStrategy(cluster.Failfast()))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	callOnce := func() {
		t.Helper()
		var out string
		if err := r.Invoke(context.Background(), "Greet", "x", &out); err != nil || out != addr {
			t.Fatalf("call: %q, %v", out, err)
		}
	}
	callOnce()
	publish(t, f, withTLS(service("2", addr), mutual))
	eventually(t, "the plaintext connection retired", func() bool { return n.closes.Load() == 1 })
	callOnce()
	publish(t, f, service("3", addr))
	eventually(t, "the TLS connection retired", func() bool { return n.closes.Load() == 2 })
	callOnce()
	want := []string{"", mutual.Key(), ""}
	if got := n.dialled(); strings.Join(got, ";") != strings.Join(want, ";") {
		t.Fatalf("dials %q, want %q", got, want)
	}
}

// A transport that cannot do TLS fails calls to a cluster that asks for
// it, naming what to do, instead of calling in plaintext.
func TestClusterTLSNeedsATLSTransport(t *testing.T) {
	const addr = "10.0.0.1:50051"
	n := newNet()
	n.handle(addr, hello(addr))
	f := &registry.Feed{}
	publish(t, f, withTLS(service("1", addr), &mesh.TLS{Mode: mesh.TLSIstioMutual}))
	r := newRef(t, f, n, consumer.WithStrategy(cluster.Failfast()))
	var out string
	err := r.Invoke(context.Background(), "Greet", "x", &out)
	if err == nil || !strings.Contains(err.Error(), "asks for istio_mutual TLS, which the transport (*consumer_test.memNet) cannot do") {
		t.Fatalf("err = %v", err)
	}
	if n.dials.Load() != 0 {
		t.Fatalf("%d plaintext dials to a cluster that asks for TLS", n.dials.Load())
	}
}
