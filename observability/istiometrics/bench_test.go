package istiometrics_test

import (
	"context"
	"testing"

	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/shoalmesh/shoal/observability/istiometrics"
	"github.com/shoalmesh/shoal/triple"
)

// BenchmarkClientInterceptor is the client side's own cost per unary call:
// the interceptor around an invoker that answers at once. Triple's reading
// of the response headers is not in it (BenchmarkLoopbackCall has it).
func BenchmarkClientInterceptor(b *testing.B) {
	m, err := istiometrics.New(istiometrics.WithWorkload(consumerWorkload))
	if err != nil {
		b.Fatal(err)
	}
	ic := m.UnaryClientInterceptor()
	req, reply := wrapperspb.String("hello"), wrapperspb.String("")
	ctx := context.Background()
	invoker := func(context.Context, string, any, any, ...triple.CallOption) error { return nil }
	b.ReportAllocs()
	for b.Loop() {
		_ = ic(ctx, "/test.Echo/Echo", req, reply, invoker)
	}
}

// TestClientInterceptorAllocations guards the client side's allocations
// per call: none (the exchange headers go as a prebuilt call option,
// the per-call state is pooled).
func TestClientInterceptorAllocations(t *testing.T) {
	m, err := istiometrics.New(istiometrics.WithWorkload(consumerWorkload))
	if err != nil {
		t.Fatal(err)
	}
	ic := m.UnaryClientInterceptor()
	req, reply := wrapperspb.String("hello"), wrapperspb.String("")
	invoker := func(context.Context, string, any, any, ...triple.CallOption) error { return nil }
	allocs := testing.AllocsPerRun(200, func() { _ = ic(context.Background(), "/test.Echo/Echo", req, reply, invoker) })
	if allocs > 0 {
		t.Errorf("client interceptor allocates %v times per call, want none", allocs)
	}
}

// BenchmarkLoopbackCall is a whole unary call between a consumer and a
// provider over loopback Triple in one process: metrics off, on the
// server only, and on both sides. "both" minus "server" is what the
// client side costs a real call, including triple's reading of the
// exchange headers and the server's answering them.
func BenchmarkLoopbackCall(b *testing.B) {
	for _, c := range []struct {
		name           string
		server, client bool
	}{{"off", false, false}, {"server", true, false}, {"client", false, true}, {"both", true, true}} {
		b.Run(c.name, func(b *testing.B) {
			a := startAppsWith(b, c.server, c.client)
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if err := a.unary(ctx, "hello"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
