package tracing

import (
	"context"
	"regexp"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/shoalmesh/shoal/triple"
)

// sent runs one call through the unary client interceptor of tr with a
// fake invoker (unit test: no transport) and returns the metadata the
// call would send and the client span.
func sent(ctx context.Context, t *testing.T, tr *Tracing, exp *tracetest.InMemoryExporter) (triple.Metadata, tracetest.SpanStub) {
	t.Helper()
	var md triple.Metadata
	fakeInvoker := func(ctx context.Context, _ string, _, _ any, _ ...triple.CallOption) error {
		md, _ = triple.FromOutgoingContext(ctx)
		return nil
	}
	exp.Reset()
	if err := tr.unaryClient(ctx, "/greet.GreetService/Greet", nil, nil, fakeInvoker); err != nil {
		t.Fatal(err)
	}
	spans := exp.GetSpans()
	if len(spans) != 1 {
		t.Fatalf("%d spans, want 1", len(spans))
	}
	return md, spans[0]
}

var uuid4 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// TestClientSendsTheChosenFormats: each Format puts exactly its headers
// on the call, carrying the client span's trace and span IDs.
func TestClientSendsTheChosenFormats(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	all := []string{"traceparent", "b3", "x-b3-traceid", "x-b3-spanid", "x-b3-sampled"}
	for _, c := range []struct {
		name   string
		format Format
		want   []string
	}{
		{"default", 0, []string{"traceparent"}},
		{"W3C", W3C, []string{"traceparent"}},
		{"B3Single", B3Single, []string{"b3"}},
		{"B3Multi", B3Multi, []string{"x-b3-traceid", "x-b3-spanid", "x-b3-sampled"}},
		{"W3C+B3Multi", W3C | B3Multi, []string{"traceparent", "x-b3-traceid", "x-b3-spanid", "x-b3-sampled"}},
		{"all", W3C | B3Single | B3Multi, all},
	} {
		t.Run(c.name, func(t *testing.T) {
			opts := []Option{WithTracerProvider(tp)}
			if c.format != 0 {
				opts = append(opts, WithFormats(c.format))
			}
			md, span := sent(context.Background(), t, New(opts...), exp)
			tid, sid := span.SpanContext.TraceID().String(), span.SpanContext.SpanID().String()
			want := map[string]string{
				"traceparent":  "00-" + tid + "-" + sid + "-01",
				"b3":           tid + "-" + sid + "-1",
				"x-b3-traceid": tid,
				"x-b3-spanid":  sid,
				"x-b3-sampled": "1",
			}
			wanted := map[string]bool{}
			for _, k := range c.want {
				wanted[k] = true
				if got := md.Get(k); got != want[k] {
					t.Errorf("%s: %q, want %q", k, got, want[k])
				}
			}
			for _, k := range all {
				if !wanted[k] && md.Get(k) != "" {
					t.Errorf("%s sent (%q), not asked for", k, md.Get(k))
				}
			}
		})
	}
}

// TestClientRequestID: the first hop generates a UUID v4 x-request-id and
// records it on its span; a request ID in the context (the served call's)
// or set in the outgoing metadata by the caller is passed on unchanged;
// WithoutRequestID sends none.
func TestClientRequestID(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	tr := New(WithTracerProvider(tp))

	md, span := sent(context.Background(), t, tr, exp)
	first := md.Get(RequestIDHeader)
	if !uuid4.MatchString(first) {
		t.Fatalf("generated x-request-id %q is not a UUID v4", first)
	}
	if got := attrOf(span, "guid:x-request-id"); got != first {
		t.Errorf("span's guid:x-request-id %q, want %q", got, first)
	}
	if md, _ = sent(context.Background(), t, tr, exp); md.Get(RequestIDHeader) == first {
		t.Errorf("two first hops got the same request ID %q", first)
	}
	if md, _ = sent(ContextWithRequestID(context.Background(), "from-the-edge"), t, tr, exp); md.Get(RequestIDHeader) != "from-the-edge" {
		t.Errorf("context's request ID: sent %q", md.Get(RequestIDHeader))
	}
	explicit := triple.NewOutgoingContext(ContextWithRequestID(context.Background(), "ctx"), triple.Metadata{RequestIDHeader: {"set-by-caller"}})
	if md, _ = sent(explicit, t, tr, exp); md.Get(RequestIDHeader) != "set-by-caller" {
		t.Errorf("caller's metadata request ID: sent %q", md.Get(RequestIDHeader))
	}
	if md, _ = sent(context.Background(), t, New(WithTracerProvider(tp), WithoutRequestID()), exp); md.Get(RequestIDHeader) != "" {
		t.Errorf("WithoutRequestID sent %q", md.Get(RequestIDHeader))
	}
	// An unsampled call still carries the request ID (and the W3C
	// context, whose flags say "not sampled").
	never := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.NeverSample()))
	t.Cleanup(func() { _ = never.Shutdown(context.Background()) })
	var got triple.Metadata
	fakeInvoker := func(ctx context.Context, _ string, _, _ any, _ ...triple.CallOption) error {
		got, _ = triple.FromOutgoingContext(ctx)
		return nil
	}
	if err := New(WithTracerProvider(never)).unaryClient(context.Background(), "/a.B/C", nil, nil, fakeInvoker); err != nil {
		t.Fatal(err)
	}
	if !uuid4.MatchString(got.Get(RequestIDHeader)) || len(got.Get("traceparent")) != 55 || got.Get("traceparent")[53:] != "00" {
		t.Errorf("unsampled call sent %v", got)
	}
}

func attrOf(s tracetest.SpanStub, key string) string {
	for _, kv := range s.Attributes {
		if string(kv.Key) == key {
			return kv.Value.AsString()
		}
	}
	return ""
}

// TestServerReadsEveryFormat: the server side continues a trace sent in
// any of the formats, and W3C wins over B3 when both came (unit test of
// the extraction on a metadata carrier).
func TestServerReadsEveryFormat(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	const (
		w3cTrace = "0af7651916cd43dd8448eb211c80319c"
		b3Trace  = "463ac35c9f6413ad48485a3953bb6124"
		span     = "b7ad6b7169203331"
	)
	tr := New(WithTracerProvider(tp))
	for _, c := range []struct {
		name  string
		md    triple.Metadata
		trace string
	}{
		{"W3C", triple.Metadata{"traceparent": {"00-" + w3cTrace + "-" + span + "-01"}}, w3cTrace},
		{"B3Single", triple.Metadata{"b3": {b3Trace + "-" + span + "-1"}}, b3Trace},
		{"B3Multi", triple.Metadata{"x-b3-traceid": {b3Trace}, "x-b3-spanid": {span}, "x-b3-sampled": {"1"}}, b3Trace},
		{"both", triple.Metadata{"traceparent": {"00-" + w3cTrace + "-" + span + "-01"}, "b3": {b3Trace + "-" + span + "-1"}}, w3cTrace},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.md[RequestIDHeader] = []string{"rid-" + c.name}
			ctx, s := tr.serverSpan(context.Background(), metadataCarrier(c.md), "greet.GreetService", "Greet")
			s.End()
			sc := s.SpanContext()
			parent := trace.SpanContextFromContext(ctx)
			if sc.TraceID().String() != c.trace || !sc.IsSampled() {
				t.Errorf("server span trace %s (sampled %v), want %s", sc.TraceID(), sc.IsSampled(), c.trace)
			}
			if parent.SpanID() != sc.SpanID() {
				t.Errorf("handler's context holds span %s, want the server span %s", parent.SpanID(), sc.SpanID())
			}
			if got := exp.GetSpans()[len(exp.GetSpans())-1]; got.Parent.SpanID().String() != span || !got.Parent.IsRemote() {
				t.Errorf("parent %s (remote %v), want the caller's %s", got.Parent.SpanID(), got.Parent.IsRemote(), span)
			}
			if RequestID(ctx) != "rid-"+c.name {
				t.Errorf("request ID %q, want the caller's", RequestID(ctx))
			}
		})
	}
	// A caller without x-request-id: this server is the edge and makes one.
	ctx, s := tr.serverSpan(context.Background(), metadataCarrier(nil), "greet.GreetService", "Greet")
	s.End()
	if !uuid4.MatchString(RequestID(ctx)) {
		t.Errorf("edge request ID %q is not a UUID v4", RequestID(ctx))
	}
}
