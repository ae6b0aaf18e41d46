package tracing_test

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"

	"github.com/shoalmesh/shoal/observability/internal/echotest"
	"github.com/shoalmesh/shoal/observability/tracing"
)

// receiver is an in-test OTLP trace collector on loopback.
type receiver struct {
	collectortrace.UnimplementedTraceServiceServer
	mu       sync.Mutex
	services map[string][]*tracepb.Span // by service.name
}

func (r *receiver) Export(_ context.Context, req *collectortrace.ExportTraceServiceRequest) (*collectortrace.ExportTraceServiceResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rs := range req.GetResourceSpans() {
		name := ""
		for _, kv := range rs.GetResource().GetAttributes() {
			if kv.GetKey() == "service.name" {
				name = kv.GetValue().GetStringValue()
			}
		}
		for _, ss := range rs.GetScopeSpans() {
			r.services[name] = append(r.services[name], ss.GetSpans()...)
		}
	}
	return &collectortrace.ExportTraceServiceResponse{}, nil
}

func startReceiver(t *testing.T) (*receiver, string) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &receiver{services: map[string][]*tracepb.Span{}}
	gs := grpc.NewServer()
	collectortrace.RegisterTraceServiceServer(gs, r)
	done := make(chan struct{})
	go func() { defer close(done); _ = gs.Serve(lis) }()
	t.Cleanup(func() { gs.Stop(); <-done })
	return r, lis.Addr().String()
}

// TestOTLPFromEnvironment: two applications whose tracer providers come
// from OTEL_* variables export their spans of one call to an OTLP
// receiver; the consumer's and the provider's spans share a trace ID and
// carry their OTEL_SERVICE_NAME.
func TestOTLPFromEnvironment(t *testing.T) {
	r, addr := startReceiver(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://"+addr)
	t.Setenv("OTEL_EXPORTER_OTLP_INSECURE", "true")
	t.Setenv("OTEL_TRACES_SAMPLER", "always_on")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	t.Setenv("OTEL_SERVICE_NAME", "echo")
	ptp, err := tracing.NewOTLPTracerProvider(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("OTEL_SERVICE_NAME", "frontend")
	ctp, err := tracing.NewOTLPTracerProvider(ctx)
	if err != nil {
		t.Fatal(err)
	}
	reg := echotest.Registry(t)
	echotest.StartProviderT(t, reg, tracing.New(tracing.WithTracerProvider(ptp)).ServerFilter(0))
	client := echotest.StartConsumer(t, reg, tracing.New(tracing.WithTracerProvider(ctp)).ClientOptions()...)
	if err := echotest.Unary(ctx, client, "hello"); err != nil {
		t.Fatal(err)
	}
	// Shutting down flushes the batches to the receiver.
	if err := ctp.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := ptp.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	fe, ec := r.services["frontend"], r.services["echo"]
	if len(fe) != 1 || len(ec) != 1 {
		t.Fatalf("received %d frontend and %d echo spans, want 1 and 1: %v", len(fe), len(ec), r.services)
	}
	if string(fe[0].GetTraceId()) != string(ec[0].GetTraceId()) || string(ec[0].GetParentSpanId()) != string(fe[0].GetSpanId()) {
		t.Errorf("server span (trace %x parent %x) is not the child of the client span (trace %x span %x)",
			ec[0].GetTraceId(), ec[0].GetParentSpanId(), fe[0].GetTraceId(), fe[0].GetSpanId())
	}
	if fe[0].GetKind() != tracepb.Span_SPAN_KIND_CLIENT || ec[0].GetKind() != tracepb.Span_SPAN_KIND_SERVER {
		t.Errorf("kinds %v / %v", fe[0].GetKind(), ec[0].GetKind())
	}
}
