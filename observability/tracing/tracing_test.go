package tracing_test

import (
	"context"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/goleak"

	"github.com/shoalmesh/shoal/observability/internal/echotest"
	"github.com/shoalmesh/shoal/observability/tracing"
	"github.com/shoalmesh/shoal/sdk/call"
	"github.com/shoalmesh/shoal/sdk/tri"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// traced is a consumer and a provider, each with its own tracer provider
// and in-memory exporter, so spans cross only through the headers.
type traced struct {
	client               *tri.Client
	clientTP             *sdktrace.TracerProvider
	clientSpans, servers *tracetest.InMemoryExporter
}

func start(t *testing.T, clientTracing bool) *traced {
	t.Helper()
	cexp, sexp := tracetest.NewInMemoryExporter(), tracetest.NewInMemoryExporter()
	ctp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(cexp))
	stp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(sexp))
	t.Cleanup(func() { _ = ctp.Shutdown(context.Background()); _ = stp.Shutdown(context.Background()) })
	reg := echotest.Registry(t)
	echotest.StartProviderT(t, reg, tracing.New(tracing.WithTracerProvider(stp)).ServerFilter(0))
	tr := &traced{clientTP: ctp, clientSpans: cexp, servers: sexp}
	if clientTracing {
		tr.client = echotest.StartConsumer(t, reg, tracing.New(tracing.WithTracerProvider(ctp), tracing.WithPropagator(propagation.TraceContext{})).ClientOptions()...)
	} else {
		tr.client = echotest.StartConsumer(t, reg)
	}
	return tr
}

func only(t *testing.T, exp *tracetest.InMemoryExporter, kind trace.SpanKind) []tracetest.SpanStub {
	t.Helper()
	var out []tracetest.SpanStub
	for _, s := range exp.GetSpans() {
		if s.SpanKind == kind {
			out = append(out, s)
		}
	}
	return out
}

func attr(s tracetest.SpanStub, key attribute.Key) attribute.Value {
	for _, kv := range s.Attributes {
		if kv.Key == key {
			return kv.Value
		}
	}
	return attribute.Value{}
}

// TestTraceContinuesAcrossTheCall: the caller's span is the parent of the
// client span, whose context reaches the provider in traceparent and is
// the parent of the server span: one trace across both processes' spans.
func TestTraceContinuesAcrossTheCall(t *testing.T) {
	tr := start(t, true)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ctx, parent := tr.clientTP.Tracer("test").Start(ctx, "handle request")
	if err := echotest.Unary(ctx, tr.client, "hello"); err != nil {
		t.Fatal(err)
	}
	if err := echotest.Unary(ctx, tr.client, "fail"); call.CodeOf(err) != call.NotFound {
		t.Fatalf("fail: %v", err)
	}
	if err := echotest.Chat(ctx, tr.client, 3); err != nil {
		t.Fatal(err)
	}
	parent.End()

	clients, servers := only(t, tr.clientSpans, trace.SpanKindClient), only(t, tr.servers, trace.SpanKindServer)
	if len(clients) != 3 || len(servers) != 3 {
		t.Fatalf("%d client and %d server spans, want 3 and 3", len(clients), len(servers))
	}
	traceID := parent.SpanContext().TraceID()
	wantNames := []string{"test.Echo/Echo", "test.Echo/Echo", "test.Echo/Chat"}
	for i := range clients {
		c, s := clients[i], servers[i]
		if c.Name != wantNames[i] || s.Name != wantNames[i] {
			t.Errorf("span %d: names %q / %q, want %q", i, c.Name, s.Name, wantNames[i])
		}
		if c.SpanContext.TraceID() != traceID || s.SpanContext.TraceID() != traceID {
			t.Errorf("span %d: trace IDs %s / %s, want %s", i, c.SpanContext.TraceID(), s.SpanContext.TraceID(), traceID)
		}
		if c.Parent.SpanID() != parent.SpanContext().SpanID() {
			t.Errorf("client span %d: parent %s, want the caller's span", i, c.Parent.SpanID())
		}
		if !s.Parent.IsRemote() || s.Parent.SpanID() != c.SpanContext.SpanID() {
			t.Errorf("server span %d: parent %s (remote %v), want the client span %s", i, s.Parent.SpanID(), s.Parent.IsRemote(), c.SpanContext.SpanID())
		}
		if attr(c, "rpc.system").AsString() != "grpc" || attr(s, "rpc.service").AsString() != "test.Echo" {
			t.Errorf("span %d: attributes %v / %v", i, c.Attributes, s.Attributes)
		}
	}
	// NOT_FOUND fails the client span but not the server's (the server did
	// its job), per the RPC conventions.
	if attr(clients[1], "rpc.grpc.status_code").AsInt64() != 5 || clients[1].Status.Code != codes.Error || servers[1].Status.Code != codes.Unset {
		t.Errorf("NOT_FOUND call: client %v %v, server %v", attr(clients[1], "rpc.grpc.status_code"), clients[1].Status, servers[1].Status)
	}
	if clients[0].Status.Code != codes.Unset || attr(servers[0], "rpc.grpc.status_code").AsInt64() != 0 {
		t.Errorf("OK call: client status %v, server code %v", clients[0].Status, attr(servers[0], "rpc.grpc.status_code"))
	}
}

// TestServerWithoutCallerTrace: a caller that sends no trace context gets
// a server span that starts a trace.
func TestServerWithoutCallerTrace(t *testing.T) {
	tr := start(t, false)
	if err := echotest.Unary(context.Background(), tr.client, "hello"); err != nil {
		t.Fatal(err)
	}
	servers := only(t, tr.servers, trace.SpanKindServer)
	if len(servers) != 1 || servers[0].Parent.IsValid() || !servers[0].SpanContext.IsValid() {
		t.Fatalf("server spans %+v, want one root span", servers)
	}
}
