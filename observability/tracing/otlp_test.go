package tracing_test

import (
	"context"
	"strings"
	"testing"
	"time"

	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/shoalmesh/shoal/observability/internal/echotest"
	"github.com/shoalmesh/shoal/observability/tracing"
	"github.com/shoalmesh/shoal/observability/tracing/tracingtest"
)

// TestOTLPFromEnvironment: two applications whose tracer providers come
// from OTEL_* variables export their spans of one call to an OTLP
// receiver, over gRPC or HTTP as OTEL_EXPORTER_OTLP_PROTOCOL (or its
// TRACES_ variant) says; the consumer's and the provider's spans share a
// trace ID and carry their OTEL_SERVICE_NAME.
func TestOTLPFromEnvironment(t *testing.T) {
	for _, c := range []struct {
		name, env, protocol string
		start               func(testing.TB) *tracingtest.Receiver
	}{
		{"grpc", "OTEL_EXPORTER_OTLP_PROTOCOL", "grpc", tracingtest.NewGRPC},
		{"http", "OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf", tracingtest.NewHTTP},
		{"http by default", "", "", tracingtest.NewHTTP},
		{"grpc for traces only", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "grpc", tracingtest.NewGRPC},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "")
			t.Setenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "")
			if c.env != "" {
				t.Setenv(c.env, c.protocol)
			}
			if c.env == "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL" {
				t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf") // the traces variable wins
			}
			exportOneCall(t, c.start(t))
		})
	}
}

// TestOTLPUnknownProtocol: an unsupported protocol is an error naming the
// variable and the choices.
func TestOTLPUnknownProtocol(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/json")
	_, err := tracing.NewOTLPTracerProvider(context.Background())
	if err == nil || !strings.Contains(err.Error(), "use grpc or http/protobuf") {
		t.Fatalf("error %v, want one naming the supported protocols", err)
	}
}

// exportOneCall makes one traced call between two applications whose
// tracer providers come from the environment, and checks what r received.
func exportOneCall(t *testing.T, r *tracingtest.Receiver) {
	t.Helper()
	r.SetEnv(t)
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
	spans := r.Spans()
	fe, ec := spans["frontend"], spans["echo"]
	if len(fe) != 1 || len(ec) != 1 {
		t.Fatalf("received %d frontend and %d echo spans, want 1 and 1: %s", len(fe), len(ec), tracingtest.Describe(spans))
	}
	if string(fe[0].GetTraceId()) != string(ec[0].GetTraceId()) || string(ec[0].GetParentSpanId()) != string(fe[0].GetSpanId()) {
		t.Errorf("server span (trace %x parent %x) is not the child of the client span (trace %x span %x)",
			ec[0].GetTraceId(), ec[0].GetParentSpanId(), fe[0].GetTraceId(), fe[0].GetSpanId())
	}
	if fe[0].GetKind() != tracepb.Span_SPAN_KIND_CLIENT || ec[0].GetKind() != tracepb.Span_SPAN_KIND_SERVER {
		t.Errorf("kinds %v / %v", fe[0].GetKind(), ec[0].GetKind())
	}
}
