package tracing

import (
	"context"
	"strconv"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/shoalmesh/shoal/triple"
)

// BenchmarkClientInterceptor is the unary client interceptor alone around
// an invoker that answers at once: what tracing adds to a call on the
// client side, at 0 %, 1 % and 100 % sampling (spans to a no-op exporter
// through a synchronous processor), with and without x-request-id, and
// with B3 headers added. "off" is a call without the interceptor.
func BenchmarkClientInterceptor(b *testing.B) {
	invoker := func(context.Context, string, any, any, ...triple.CallOption) error { return nil }
	tracer := func(ratio float64, opts ...Option) *Tracing {
		tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(tracetest.NewNoopExporter()),
			sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio))))
		b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
		return New(append([]Option{WithTracerProvider(tp)}, opts...)...)
	}
	ctx := context.Background()
	b.Run("off", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = invoker(ctx, "/greet.GreetService/Greet", nil, nil)
		}
	})
	for _, v := range []struct {
		name string
		t    *Tracing
	}{
		{"sampled=0%", tracer(0)},
		{"sampled=0%,no-request-id", tracer(0, WithoutRequestID())},
		{"sampled=1%", tracer(0.01)},
		{"sampled=100%", tracer(1)},
		{"sampled=100%,no-request-id", tracer(1, WithoutRequestID())},
		{"sampled=1%,W3C+B3", tracer(0.01, WithFormats(W3C|B3Multi))},
	} {
		b.Run(v.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = v.t.unaryClient(ctx, "/greet.GreetService/Greet", nil, nil, invoker)
			}
		})
	}
}

// TestUnsampledClientAllocations: an unsampled call costs the client
// interceptor at most 10 allocations (span, context, outgoing metadata
// with traceparent and x-request-id), 8 without the request ID.
func TestUnsampledClientAllocations(t *testing.T) {
	if raceOn {
		t.Skip("the race detector adds allocations; run without -race")
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.NeverSample()))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	invoker := func(context.Context, string, any, any, ...triple.CallOption) error { return nil }
	for _, c := range []struct {
		t    *Tracing
		want float64
	}{{New(WithTracerProvider(tp)), 10}, {New(WithTracerProvider(tp), WithoutRequestID()), 8}} {
		got := testing.AllocsPerRun(200, func() { _ = c.t.unaryClient(context.Background(), "/greet.GreetService/Greet", nil, nil, invoker) })
		if got > c.want {
			t.Errorf("unsampled call (request ID %v): %v allocations, want at most %v", c.t.requestID, got, c.want)
		}
	}
}

// TestStartCacheBound: past maxCachedMethods, methods still get their
// own span names, without being kept.
func TestStartCacheBound(t *testing.T) {
	var c startCache
	for i := range maxCachedMethods + 10 {
		m := "/svc.S/M" + strconv.Itoa(i)
		if got := c.get(m).name; got != m[1:] {
			t.Fatalf("span name %q for %q", got, m)
		}
	}
	if n := c.n.Load(); n != maxCachedMethods {
		t.Errorf("%d methods cached, want %d", n, maxCachedMethods)
	}
}
