package tracingtest_test

import (
	"context"
	"testing"
	"time"

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"go.uber.org/goleak"

	"github.com/shoalmesh/shoal/observability/tracing/tracingtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestWait: Wait returns once an export makes the condition true, and
// fails naming what arrived when the context ends first.
func TestWait(t *testing.T) {
	r := tracingtest.NewGRPC(t)
	ready := func(s map[string][]*tracepb.Span) bool { return len(s["svc"]) == 1 }
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := r.Wait(ctx, ready); err == nil {
		t.Fatal("Wait succeeded with no span")
	}
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_, err := r.Wait(ctx, ready)
		done <- err
	}()
	req := &collectortrace.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{{
		Resource: &resourcepb.Resource{Attributes: []*commonpb.KeyValue{{
			Key: "service.name", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: "svc"}},
		}}},
		ScopeSpans: []*tracepb.ScopeSpans{{Spans: []*tracepb.Span{{Name: "a"}}}},
	}}}
	if _, err := r.Export(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := r.Spans()["svc"]; len(got) != 1 || got[0].GetName() != "a" {
		t.Errorf("spans %v", got)
	}
}
