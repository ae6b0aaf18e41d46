package interop

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/shoalmesh/shoal/interop/peer/java"
	"github.com/shoalmesh/shoal/interop/peer/proc"
	"github.com/shoalmesh/shoal/observability/tracing"
	"github.com/shoalmesh/shoal/observability/tracing/tracingtest"
	"github.com/shoalmesh/shoal/proto/greet"
	"github.com/shoalmesh/shoal/proto/greet/greettriple"
	"github.com/shoalmesh/shoal/triple"
)

// TestTraceContinuityJava: a Go consumer calls the Java Dubbo 3.3.6
// provider (samples/java, Dubbo's own tracing on: Micrometer Tracing over
// OpenTelemetry, exporting OTLP/gRPC), which answers by calling a Go
// provider. Every hop exports to one in-test OTLP receiver, which must
// hold one trace: Go client span -> Java server span -> Java client span
// -> Go server span, each the parent of the next. Run once with Dubbo's
// default W3C propagation and once with B3 (the Go consumer then sends
// the single and the multiple B3 headers, Dubbo sends the single b3
// header on). Dubbo reads only the single one from a Triple call: its
// tracing looks attachments up case-sensitively under OTel Java's
// X-B3-TraceId names, while Triple (HTTP/2) headers are lower case. The
// x-request-id the Go consumer generated reaches the Go provider.
func TestTraceContinuityJava(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a JVM running Apache Dubbo 3.3.6; run without -short (make test)")
	}
	root, _ := filepath.Abs("..")
	jar, err := java.Jar(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, dubbo string
		format      tracing.Format
		headers     []string // what the Java hop must have received from Go
		onward      []string // what the Go provider must have received from Java
	}{
		{"W3C", "W3C", tracing.W3C, []string{"traceparent"}, []string{"traceparent"}},
		{"B3", "B3", tracing.B3Single | tracing.B3Multi, []string{"b3", "x-b3-traceid", "x-b3-spanid", "x-b3-sampled"}, []string{"b3"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			traceChain(t, jar, c.dubbo, c.format, c.headers, c.onward)
		})
	}
}

func traceChain(t *testing.T, jar, dubboPropagation string, format tracing.Format, headers, onward []string) {
	recv := tracingtest.NewGRPC(t) // Dubbo 3.3 exports OTLP over gRPC only
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
	recv.SetEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	// The Go provider.
	t.Setenv("OTEL_SERVICE_NAME", "go-provider")
	ptp, err := tracing.NewOTLPTracerProvider(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ptp.Shutdown(context.Background()) }) // after a failure; a second Shutdown is harmless
	srv := triple.NewServer(tracing.New(tracing.WithTracerProvider(ptp)).ServerOptions()...)
	if err := greettriple.RegisterGreetServiceHandler(srv, &tracedGreeter{}); err != nil {
		t.Fatal(err)
	}
	goProvider := serveLoopback(t, srv)

	// The Java provider in the middle.
	port, err := proc.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("java", java.Args(jar, "provider-idl",
		"--port", strconv.Itoa(port), "--app", "java-middle",
		"--forward", "tri://"+goProvider, "--otlp", recv.Endpoint(), "--propagation", dubboPropagation)...)
	stopJava, err := proc.StartServer(ctx, cmd, 90*time.Second)
	if err != nil {
		t.Fatalf("the Java provider: %v", err)
	}
	t.Cleanup(stopJava)

	// The Go consumer.
	t.Setenv("OTEL_SERVICE_NAME", "go-consumer")
	ctp, err := tracing.NewOTLPTracerProvider(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ctp.Shutdown(context.Background()) })
	cc, err := triple.Dial("tri://127.0.0.1:"+strconv.Itoa(port), tracing.New(tracing.WithTracerProvider(ctp), tracing.WithFormats(format)).ClientOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	resp, err := greettriple.NewGreetServiceClient(cc).Greet(ctx, &greet.GreetRequest{Name: "trace"})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetGreeting() != "Hello, trace" || !bytes.HasPrefix([]byte(resp.GetServedBy()), []byte("java@")) {
		t.Fatalf("answer %q served by %q, want the Go provider's answer through Java", resp.GetGreeting(), resp.GetServedBy())
	}
	// Dubbo attachments both ways: the Java hop read Go's trace headers as
	// attachments, and Dubbo's tracing wrote its own as attachments, which
	// reached the Go provider as headers.
	seen := resp.GetSeen()
	for _, h := range headers {
		if seen["java."+h] == "" {
			t.Errorf("the Java provider received no %s attachment; it saw %v", h, seen)
		}
	}
	for _, h := range onward {
		if seen[h] == "" {
			t.Errorf("the Go provider received no %s header from Dubbo; it saw %v", h, seen)
		}
	}
	rid := seen["java.x-request-id"]
	if rid == "" || seen[tracing.RequestIDHeader] != rid {
		t.Errorf("x-request-id: Java saw %q, the Go provider %q; want the consumer's at both", rid, seen[tracing.RequestIDHeader])
	}

	// Go flushes at shutdown; Dubbo's batch processor exports on its
	// schedule: wait for its two spans.
	if err := ctp.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := ptp.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	spans, err := recv.Wait(ctx, func(s map[string][]*tracepb.Span) bool {
		return len(s["java-middle"]) >= 2 && len(s["go-consumer"]) >= 1 && len(s["go-provider"]) >= 1
	})
	if err != nil {
		t.Fatal(err)
	}
	goClient := oneSpan(t, spans, "go-consumer", tracepb.Span_SPAN_KIND_CLIENT)
	javaServer := oneSpan(t, spans, "java-middle", tracepb.Span_SPAN_KIND_SERVER)
	javaClient := oneSpan(t, spans, "java-middle", tracepb.Span_SPAN_KIND_CLIENT)
	goServer := oneSpan(t, spans, "go-provider", tracepb.Span_SPAN_KIND_SERVER)
	chain := []*tracepb.Span{goClient, javaServer, javaClient, goServer}
	for i, s := range chain {
		if !bytes.Equal(s.GetTraceId(), goClient.GetTraceId()) {
			t.Errorf("hop %d (%s) has trace %x, want the consumer's %x:%s", i, s.GetName(), s.GetTraceId(), goClient.GetTraceId(), tracingtest.Describe(spans))
		}
		if i > 0 && !bytes.Equal(s.GetParentSpanId(), chain[i-1].GetSpanId()) {
			t.Errorf("hop %d (%s) has parent %x, want hop %d (%s) %x:%s", i, s.GetName(), s.GetParentSpanId(), i-1, chain[i-1].GetName(), chain[i-1].GetSpanId(), tracingtest.Describe(spans))
		}
	}
	if len(goClient.GetParentSpanId()) != 0 {
		t.Errorf("the consumer's span has parent %x, want a root span", goClient.GetParentSpanId())
	}
	if got := spanAttr(goServer, "guid:x-request-id"); got != rid {
		t.Errorf("the Go provider's span has request ID %q, want %q", got, rid)
	}
}

// oneSpan returns the only span of kind that service exported.
func oneSpan(t *testing.T, spans map[string][]*tracepb.Span, service string, kind tracepb.Span_SpanKind) *tracepb.Span {
	t.Helper()
	var found []*tracepb.Span
	for _, s := range spans[service] {
		if s.GetKind() == kind {
			found = append(found, s)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%s exported %d %v spans, want 1:%s", service, len(found), kind, tracingtest.Describe(spans))
	}
	return found[0]
}

func spanAttr(s *tracepb.Span, key string) string {
	for _, kv := range s.GetAttributes() {
		if kv.GetKey() == key {
			return kv.GetValue().GetStringValue()
		}
	}
	return ""
}

// tracedGreeter is the Go provider at the end of the chain: it answers
// Greet with what it received in seen (its request headers).
type tracedGreeter struct {
	greettriple.UnimplementedGreetServiceHandler
}

func (tracedGreeter) Greet(ctx context.Context, req *greet.GreetRequest) (*greet.GreetResponse, error) {
	seen := map[string]string{}
	if md, ok := triple.FromIncomingContext(ctx); ok {
		for k := range md {
			seen[k] = md.Get(k)
		}
	}
	return &greet.GreetResponse{Greeting: "Hello, " + req.GetName(), ServedBy: "go-provider", Seen: seen}, nil
}
