package admin_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/shoalmesh/shoal/observability/admin"
	"github.com/shoalmesh/shoal/observability/internal/echotest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestEndpoints(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "shoal_test_total", Help: "test"})
	reg.MustRegister(c)
	c.Add(3)
	blocker := errors.New("xds: no ADS stream yet")
	s, err := admin.New(admin.WithAddress("127.0.0.1:0"), admin.WithGatherer(reg),
		admin.WithReadiness(func(context.Context) error { return blocker }))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.HandleJSON("/debug/xds", func(ctx context.Context) (any, error) {
		return map[string]any{"resources": []string{"a", "b"}, "type": admin.Query(ctx).Get("type")}, nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Stop(context.Background()) }()
	base := "http://" + s.Addr().String()

	if code, body := echotest.Get(t, base+"/metrics"); code != 200 || !strings.Contains(body, "shoal_test_total 3") {
		t.Errorf("/metrics = %d %q", code, body)
	}
	if code, _ := echotest.Get(t, base+"/healthz"); code != 200 {
		t.Errorf("/healthz = %d", code)
	}
	if code, body := echotest.Get(t, base+"/readyz"); code != 503 || !strings.Contains(body, "not started") || !strings.Contains(body, "no ADS stream") {
		t.Errorf("/readyz before ready = %d %q", code, body)
	}
	s.SetReady(true)
	blocker = nil
	if code, _ := echotest.Get(t, base+"/readyz"); code != 200 {
		t.Errorf("/readyz when ready = %d", code)
	}
	if code, body := echotest.Get(t, base+"/debug/pprof/"); code != 200 || !strings.Contains(body, "goroutine") {
		t.Errorf("/debug/pprof/ = %d", code)
	}
	if code, body := echotest.Get(t, base+"/debug/xds"); code != 200 || !strings.Contains(body, `"resources"`) {
		t.Errorf("/debug/xds = %d %q", code, body)
	}
	if code, body := echotest.Get(t, base+"/debug/xds?type=cds"); code != 200 || !strings.Contains(body, `"type": "cds"`) {
		t.Errorf("/debug/xds?type=cds = %d %q", code, body)
	}
	if q := admin.Query(context.Background()); q != nil {
		t.Errorf("Query outside a view: %v", q)
	}
	if code, body := echotest.Get(t, base+"/"); code != 200 || !strings.Contains(body, "/debug/xds") {
		t.Errorf("/ = %d %q", code, body)
	}
}

func TestHandleJSONRejects(t *testing.T) {
	s, err := admin.New(admin.WithAddress("127.0.0.1:0"))
	if err != nil {
		t.Fatal(err)
	}
	view := func(context.Context) (any, error) { return nil, nil }
	for _, p := range []string{"/metrics", "/debug/", "/debug/pprof/x", "xds"} {
		if err := s.HandleJSON(p, view); err == nil {
			t.Errorf("HandleJSON(%q) accepted", p)
		}
	}
	if err := s.HandleJSON("/debug/v", view); err != nil {
		t.Fatal(err)
	}
	if err := s.HandleJSON("/debug/v", view); err == nil || !strings.Contains(err.Error(), "already served") {
		t.Errorf("second /debug/v: %v", err)
	}
	if _, err := admin.New(admin.WithAddress("localhost")); err == nil {
		t.Error("address without a port accepted")
	}
}

// TestGRPCOnTheAdminPort: a gRPC client reaches the server given to
// WithGRPC on the admin port (cleartext HTTP/2), and the HTTP pages still
// answer.
func TestGRPCOnTheAdminPort(t *testing.T) {
	gs := grpc.NewServer()
	hs := health.NewServer()
	hs.SetServingStatus("shoal.admin", healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(gs, hs)
	defer gs.Stop()
	s, err := admin.New(admin.WithAddress("127.0.0.1:0"), admin.WithGRPC(gs))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Stop(context.Background()) }()
	conn, err := grpc.NewClient(s.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	resp, err := healthpb.NewHealthClient(conn).Check(context.Background(), &healthpb.HealthCheckRequest{Service: "shoal.admin"})
	if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("gRPC health on the admin port: %v, %v", resp, err)
	}
	if code, _ := echotest.Get(t, "http://"+s.Addr().String()+"/healthz"); code != 200 {
		t.Errorf("/healthz beside gRPC = %d", code)
	}
}
