package tracing_test

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/goleak"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/shoalmesh/shoal/observability/internal/echotest"
	"github.com/shoalmesh/shoal/observability/tracing"
	"github.com/shoalmesh/shoal/sdk/call"
	"github.com/shoalmesh/shoal/sdk/tri"
	"github.com/shoalmesh/shoal/triple"
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

// ridEcho is the echo service recording the request ID and span context
// its handler's context holds.
type ridEcho struct {
	echotest.Impl
	mu   sync.Mutex
	rids []string
	sc   []trace.SpanContext
}

func (e *ridEcho) Echo(ctx context.Context, req *wrapperspb.StringValue) (*wrapperspb.StringValue, error) {
	e.mu.Lock()
	e.rids = append(e.rids, tracing.RequestID(ctx))
	e.sc = append(e.sc, trace.SpanContextFromContext(ctx))
	e.mu.Unlock()
	return e.Impl.Echo(ctx, req)
}

// TestServerOptions: a plain triple.Server with ServerOptions continues
// the trace of a triple.ClientConn with ClientOptions sending B3 multiple
// headers only, for unary calls and streams; the handler's context holds
// the server span and the caller's request ID.
func TestServerOptions(t *testing.T) {
	cexp, sexp := tracetest.NewInMemoryExporter(), tracetest.NewInMemoryExporter()
	ctp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(cexp))
	stp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(sexp))
	t.Cleanup(func() { _ = ctp.Shutdown(context.Background()); _ = stp.Shutdown(context.Background()) })
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	impl := &ridEcho{}
	srv := triple.NewServer(tracing.New(tracing.WithTracerProvider(stp)).ServerOptions()...)
	if err := srv.Register(&echotest.Desc, impl); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(lis) }()
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()); <-done })
	cc, err := triple.Dial("tri://"+lis.Addr().String(), tracing.New(tracing.WithTracerProvider(ctp), tracing.WithFormats(tracing.B3Multi)).ClientOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	ctx, cancel := context.WithTimeout(tracing.ContextWithRequestID(context.Background(), "rid-1"), 20*time.Second)
	defer cancel()
	out := new(wrapperspb.StringValue)
	if err := cc.Invoke(ctx, "/test.Echo/Echo", wrapperspb.String("hi"), out); err != nil {
		t.Fatal(err)
	}
	st, err := cc.NewStream(ctx, &echotest.Desc.Streams[0], "/test.Echo/Chat")
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if err := st.RecvMsg(out); !errors.Is(err, io.EOF) {
		t.Fatalf("stream end: %v", err)
	}
	// The server ends its stream span before the client sees the end.
	clients, servers := only(t, cexp, trace.SpanKindClient), only(t, sexp, trace.SpanKindServer)
	if len(clients) != 2 || len(servers) != 2 {
		t.Fatalf("%d client and %d server spans, want 2 and 2", len(clients), len(servers))
	}
	for i, name := range []string{"test.Echo/Echo", "test.Echo/Chat"} {
		c, s := clients[i], servers[i]
		if s.Name != name || s.SpanContext.TraceID() != c.SpanContext.TraceID() || s.Parent.SpanID() != c.SpanContext.SpanID() {
			t.Errorf("%s: server span %s (trace %s parent %s) is not the child of client span (trace %s span %s)",
				name, s.Name, s.SpanContext.TraceID(), s.Parent.SpanID(), c.SpanContext.TraceID(), c.SpanContext.SpanID())
		}
		if attr(s, "guid:x-request-id").AsString() != "rid-1" {
			t.Errorf("%s: server span request ID %v", name, attr(s, "guid:x-request-id"))
		}
	}
	impl.mu.Lock()
	defer impl.mu.Unlock()
	if len(impl.rids) != 1 || impl.rids[0] != "rid-1" || impl.sc[0].SpanID() != servers[0].SpanContext.SpanID() {
		t.Errorf("handler saw request IDs %v and span %v, want rid-1 and the server span", impl.rids, impl.sc)
	}
}
