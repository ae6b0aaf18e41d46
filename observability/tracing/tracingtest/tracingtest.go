package tracingtest

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
)

// Receiver collects the spans exported to it. It stops when the test ends.
type Receiver struct {
	collectortrace.UnimplementedTraceServiceServer
	addr string

	mu       sync.Mutex
	services map[string][]*tracepb.Span // by service.name
	changed  chan struct{}              // closed and replaced on every export
}

func newReceiver() *Receiver {
	return &Receiver{services: map[string][]*tracepb.Span{}, changed: make(chan struct{})}
}

// NewGRPC starts a receiver serving OTLP/gRPC on a loopback port.
func NewGRPC(t testing.TB) *Receiver {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := newReceiver()
	r.addr = lis.Addr().String()
	gs := grpc.NewServer()
	collectortrace.RegisterTraceServiceServer(gs, r)
	done := make(chan struct{})
	go func() { defer close(done); _ = gs.Serve(lis) }()
	t.Cleanup(func() { gs.Stop(); <-done })
	return r
}

// NewHTTP starts a receiver serving OTLP/HTTP with protobuf bodies on a
// loopback port.
func NewHTTP(t testing.TB) *Receiver {
	t.Helper()
	r := newReceiver()
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/traces", func(w http.ResponseWriter, req *http.Request) {
		body, err := io.ReadAll(req.Body)
		in := new(collectortrace.ExportTraceServiceRequest)
		if err == nil {
			err = proto.Unmarshal(body, in)
		}
		if err != nil || req.Header.Get("Content-Type") != "application/x-protobuf" {
			http.Error(w, "want an OTLP protobuf body (Content-Type application/x-protobuf)", http.StatusBadRequest)
			return
		}
		out, _ := r.Export(req.Context(), in)
		b, err := proto.Marshal(out)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(b)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	r.addr = srv.Listener.Addr().String()
	return r
}

// Addr is the receiver's host:port.
func (r *Receiver) Addr() string { return r.addr }

// Endpoint is the receiver's URL, as OTEL_EXPORTER_OTLP_ENDPOINT takes it.
func (r *Receiver) Endpoint() string { return "http://" + r.addr }

// SetEnv points the OTLP exporters of t at r, in cleartext, sampling
// every trace: OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_INSECURE
// and OTEL_TRACES_SAMPLER, until t ends. The protocol variables are left
// to the test.
func (r *Receiver) SetEnv(t testing.TB) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", r.Endpoint())
	t.Setenv("OTEL_EXPORTER_OTLP_INSECURE", "true")
	t.Setenv("OTEL_TRACES_SAMPLER", "always_on")
}

// Export implements the OTLP TraceService.
func (r *Receiver) Export(_ context.Context, req *collectortrace.ExportTraceServiceRequest) (*collectortrace.ExportTraceServiceResponse, error) {
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
	close(r.changed)
	r.changed = make(chan struct{})
	return &collectortrace.ExportTraceServiceResponse{}, nil
}

// Spans returns the spans received so far, by service name.
func (r *Receiver) Spans() map[string][]*tracepb.Span {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string][]*tracepb.Span, len(r.services))
	for k, v := range r.services {
		out[k] = append([]*tracepb.Span(nil), v...)
	}
	return out
}

// Wait returns the spans received once ready(spans) holds, or an error
// when ctx ends first.
func (r *Receiver) Wait(ctx context.Context, ready func(map[string][]*tracepb.Span) bool) (map[string][]*tracepb.Span, error) {
	for {
		r.mu.Lock()
		changed := r.changed
		r.mu.Unlock()
		spans := r.Spans()
		if ready(spans) {
			return spans, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return spans, fmt.Errorf("tracingtest: the spans expected did not arrive (%w); received: %s", ctx.Err(), Describe(spans))
		}
	}
}

// Describe lists spans by service for failure messages.
func Describe(spans map[string][]*tracepb.Span) string {
	s := ""
	for svc, ss := range spans {
		for _, sp := range ss {
			s += fmt.Sprintf("\n  %s: %q kind %v trace %x span %x parent %x", svc, sp.GetName(), sp.GetKind(), sp.GetTraceId(), sp.GetSpanId(), sp.GetParentSpanId())
		}
	}
	if s == "" {
		return "none"
	}
	return s
}
