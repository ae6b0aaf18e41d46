package istiometrics_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/shoalmesh/shoal/observability/admin"
	"github.com/shoalmesh/shoal/observability/istiometrics"
	"github.com/shoalmesh/shoal/observability/promtest"
)

// TestPrometheusEndToEnd runs a real Prometheus server (Debian's
// prometheus package, installed by scripts/deps.sh; package promtest) on loopback, scraping
// the admin endpoints of a consumer and a provider. After N calls, PromQL
// over the source side and over the destination side counts the same N.
func TestPrometheusEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real Prometheus server; run without -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	a := startApps(t, true)
	var targets []string
	for _, m := range []*istiometrics.Metrics{a.consumerMetrics, a.providerMetrics} {
		s, err := admin.New(admin.WithAddress("127.0.0.1:0"), admin.WithGatherer(m.Registry()))
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Stop(context.Background()) })
		targets = append(targets, s.Addr().String())
	}
	const n = 250
	for i := range n {
		if err := a.unary(ctx, fmt.Sprint("call ", i)); err != nil {
			t.Fatal(err)
		}
	}

	prom := promtest.Start(ctx, t, targets...)
	// Wait, boundedly, for a scrape that has all calls; then compare.
	queries := map[string]string{
		"source":      `sum(istio_requests_total{reporter="source"})`,
		"destination": `sum(istio_requests_total{reporter="destination"})`,
		"edge":        `sum(istio_requests_total{reporter="destination",source_workload="frontend-v1",destination_workload="echo-v2",response_code="200",grpc_response_status="0"})`,
	}
	got := map[string]float64{}
	prom.Await(ctx, t, func(ctx context.Context) (bool, error) {
		for name, q := range queries {
			v, err := prom.Value(ctx, q)
			if err != nil {
				return false, err
			}
			got[name] = v
		}
		return got["source"] == n && got["destination"] == n && got["edge"] == n, nil
	}, func() string { return fmt.Sprintf("%v, want %d each", got, n) })
	buckets, err := prom.Value(ctx, `count(istio_request_duration_milliseconds_bucket{reporter="source"})`)
	if err != nil {
		t.Fatal(err)
	}
	if buckets != float64(len(istiometrics.DurationBuckets)+1) {
		t.Errorf("source duration buckets = %v, want Envoy's %d plus +Inf", buckets, len(istiometrics.DurationBuckets))
	}
}
