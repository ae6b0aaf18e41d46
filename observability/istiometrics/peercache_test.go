package istiometrics

import (
	"context"
	"strings"
	"testing"

	"github.com/shoalmesh/shoal/observability/peer"
	"github.com/shoalmesh/shoal/triple"
)

// TestClientParsesAPeerHeaderOnce checks that the client side parses the
// server's x-envoy-peer-metadata once per distinct value, not on every
// call: each response carries the same value again (a fresh string, as a
// header decoder may hand over), and only a new value is parsed.
func TestClientParsesAPeerHeaderOnce(t *testing.T) {
	var parses int
	decodePeer = func(v string) (peer.Workload, error) { parses++; return peer.Decode(v) }
	t.Cleanup(func() { decodePeer = peer.Decode })

	m, err := New(WithWorkload(peer.Workload{Name: "c-0", Namespace: "shop", WorkloadName: "c", Labels: map[string]string{"app": "c"}}))
	if err != nil {
		t.Fatal(err)
	}
	encode := func(name string) string {
		w := peer.Workload{Name: name + "-0", Namespace: "shop", WorkloadName: name, Labels: map[string]string{"app": name, "version": "v1"}}
		v, err := w.Encode()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	first, second := encode("p"), encode("q")
	answer := first
	// The invoker answers as a server would: triple sets the HeaderValue
	// the interceptor passed for x-envoy-peer-metadata.
	invoker := func(_ context.Context, _ string, _, _ any, opts ...triple.CallOption) error {
		for _, o := range opts {
			if hv, ok := o.(*triple.HeaderValue); ok && hv.Key == peer.HeaderMetadata {
				hv.Value = strings.Clone(answer)
			}
		}
		return nil
	}
	ic := m.UnaryClientInterceptor()
	for range 100 {
		if err := ic(context.Background(), "/test.Echo/Echo", nil, nil, invoker); err != nil {
			t.Fatal(err)
		}
	}
	if parses != 1 {
		t.Fatalf("100 responses with the same x-envoy-peer-metadata parsed it %d times, want 1", parses)
	}
	if p := m.peerOf(strings.Clone(first)); p == m.unknownPeer || p.w.WorkloadName != "p" {
		t.Fatalf("the cached peer is %+v, want workload p", p.w)
	}
	answer = second
	for range 10 {
		_ = ic(context.Background(), "/test.Echo/Echo", nil, nil, invoker)
	}
	if parses != 2 {
		t.Fatalf("a second peer's header: %d parses in all, want 2", parses)
	}
}
