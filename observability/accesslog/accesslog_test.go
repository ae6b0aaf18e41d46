package accesslog_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.uber.org/goleak"

	"github.com/shoalmesh/shoal/observability/accesslog"
	"github.com/shoalmesh/shoal/observability/internal/echotest"
	"github.com/shoalmesh/shoal/observability/istiometrics"
	"github.com/shoalmesh/shoal/observability/peer"
	"github.com/shoalmesh/shoal/observability/tracing"
	"github.com/shoalmesh/shoal/sdk/call"
	"github.com/shoalmesh/shoal/sdk/filter"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type lines struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *lines) Write(p []byte) (int, error) { l.mu.Lock(); defer l.mu.Unlock(); return l.buf.Write(p) }

func (l *lines) records(t *testing.T) []map[string]any {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(l.buf.String()), "\n") {
		if line == "" {
			continue
		}
		var r map[string]any
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

// TestSampledAccessLog: with WithEvery(2), 4 successful calls log 2 lines
// on each side and the failed call logs on both; the server's lines name
// the caller's workload (from the metadata exchange) and the trace.
func TestSampledAccessLog(t *testing.T) {
	var server, client lines
	sl, err := accesslog.New(slog.New(slog.NewJSONHandler(&server, nil)), accesslog.WithEvery(2))
	if err != nil {
		t.Fatal(err)
	}
	cl, err := accesslog.New(slog.New(slog.NewJSONHandler(&client, nil)), accesslog.WithEvery(2))
	if err != nil {
		t.Fatal(err)
	}
	w := peer.Workload{Name: "frontend-0", Namespace: "shop", WorkloadName: "frontend", Labels: map[string]string{"app": "frontend"}}
	m, err := istiometrics.New(istiometrics.WithWorkload(w))
	if err != nil {
		t.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider()
	defer func() { _ = tp.Shutdown(context.Background()) }()
	tr := tracing.New(tracing.WithTracerProvider(tp))
	reg := echotest.Registry(t)
	echotest.StartProviderT(t, reg, tr.ServerFilter(0), sl.ServerFilter(1))
	c := echotest.StartConsumerWithFilters(t, reg, []filter.Client{cl.ClientFilter(0)}, append(m.ClientOptions(), tr.ClientOptions()...)...)
	ctx := context.Background()
	for range 4 {
		if err := echotest.Unary(ctx, c, "hello"); err != nil {
			t.Fatal(err)
		}
	}
	if err := echotest.Unary(ctx, c, "fail"); call.CodeOf(err) != call.NotFound {
		t.Fatalf("fail: %v", err)
	}
	for side, l := range map[string]*lines{"inbound": &server, "outbound": &client} {
		rs := l.records(t)
		if len(rs) != 3 {
			t.Fatalf("%s: %d lines, want 2 sampled successes and the failure: %v", side, len(rs), rs)
		}
		last := rs[2]
		if last["direction"] != side || last["path"] != "/test.Echo/Echo" || last["grpc_status"] != "not-found" || last["error"] == nil {
			t.Errorf("%s failure line: %v", side, last)
		}
		if side == "inbound" && (rs[0]["peer_workload"] != "frontend" || rs[0]["peer_namespace"] != "shop" || len(rs[0]["trace_id"].(string)) != 32) {
			t.Errorf("inbound line: %v", rs[0])
		}
	}
	if _, err := accesslog.New(nil); err == nil {
		t.Error("New(nil) accepted")
	}
	if _, err := accesslog.New(slog.Default(), accesslog.WithEvery(0)); err == nil {
		t.Error("WithEvery(0) accepted")
	}
}
