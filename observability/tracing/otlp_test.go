package tracing_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

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

// startReceiver serves OTLP/gRPC on loopback and returns its address.
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

// startHTTPReceiver serves OTLP/HTTP with protobuf bodies (POST
// /v1/traces) on loopback and returns its address.
func startHTTPReceiver(t *testing.T) (*receiver, string) {
	t.Helper()
	r := &receiver{services: map[string][]*tracepb.Span{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/traces", func(w http.ResponseWriter, req *http.Request) {
		body, err := io.ReadAll(req.Body)
		in := new(collectortrace.ExportTraceServiceRequest)
		if err == nil {
			err = proto.Unmarshal(body, in)
		}
		if err != nil || req.Header.Get("Content-Type") != "application/x-protobuf" {
			http.Error(w, "want an OTLP protobuf body", http.StatusBadRequest)
			return
		}
		out, _ := r.Export(req.Context(), in)
		b, _ := proto.Marshal(out)
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(b)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return r, srv.Listener.Addr().String()
}

// TestOTLPFromEnvironment: two applications whose tracer providers come
// from OTEL_* variables export their spans of one call to an OTLP
// receiver, over gRPC or HTTP as OTEL_EXPORTER_OTLP_PROTOCOL (or its
// TRACES_ variant) says; the consumer's and the provider's spans share a
// trace ID and carry their OTEL_SERVICE_NAME.
func TestOTLPFromEnvironment(t *testing.T) {
	for _, c := range []struct {
		name, env, protocol string
		start               func(*testing.T) (*receiver, string)
	}{
		{"grpc", "OTEL_EXPORTER_OTLP_PROTOCOL", "grpc", startReceiver},
		{"http", "OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf", startHTTPReceiver},
		{"http by default", "", "", startHTTPReceiver},
		{"grpc for traces only", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "grpc", startReceiver},
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
			r, addr := c.start(t)
			exportOneCall(t, r, addr)
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
func exportOneCall(t *testing.T, r *receiver, addr string) {
	t.Helper()
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
