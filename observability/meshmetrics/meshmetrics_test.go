package meshmetrics_test

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/shoalmesh/shoal/observability/meshmetrics"
	"github.com/shoalmesh/shoal/sdk/observer"
)

// TestEventsBecomeSeries: each event the sdk reports lands on its series
// with the right labels and count; the endpoint gauges follow the last
// report.
func TestEventsBecomeSeries(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := meshmetrics.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	var o observer.Observer = m
	o.Endpoints("greet.GreetService", 3, 4)
	o.Endpoints("greet.GreetService", 2, 4)
	o.Ejected("greet.GreetService|v1", "10.0.0.1:1")
	for range 3 {
		o.Retry("greet.GreetService|v1")
	}
	o.Overflow("greet.GreetService|v2", observer.MaxRequests)
	o.Overflow("greet.GreetService|v2", observer.MaxRetries)
	o.Overflow("greet.GreetService|v2", observer.MaxRetries)
	o.Fault("greet.GreetService", observer.Delay)
	o.Fault("greet.GreetService", observer.Abort)
	o.Fault("greet.GreetService", observer.Abort)
	want := `
# HELP shoal_client_circuit_breaker_overflows_total Calls or retries refused by a circuit breaker.
# TYPE shoal_client_circuit_breaker_overflows_total counter
shoal_client_circuit_breaker_overflows_total{destination="greet.GreetService|v2",limit="max_requests"} 1
shoal_client_circuit_breaker_overflows_total{destination="greet.GreetService|v2",limit="max_retries"} 2
# HELP shoal_client_endpoints Distinct endpoints of a reference's clusters.
# TYPE shoal_client_endpoints gauge
shoal_client_endpoints{reference="greet.GreetService"} 4
# HELP shoal_client_endpoints_ready Ready endpoints of a reference's clusters.
# TYPE shoal_client_endpoints_ready gauge
shoal_client_endpoints_ready{reference="greet.GreetService"} 2
# HELP shoal_client_faults_injected_total Faults injected by routes.
# TYPE shoal_client_faults_injected_total counter
shoal_client_faults_injected_total{fault="abort",service="greet.GreetService"} 2
shoal_client_faults_injected_total{fault="delay",service="greet.GreetService"} 1
# HELP shoal_client_outlier_ejections_total Endpoints ejected by outlier detection.
# TYPE shoal_client_outlier_ejections_total counter
shoal_client_outlier_ejections_total{destination="greet.GreetService|v1"} 1
# HELP shoal_client_retries_total Retries of calls (first tries not counted).
# TYPE shoal_client_retries_total counter
shoal_client_retries_total{destination="greet.GreetService|v1"} 3
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
}

func TestNewRejects(t *testing.T) {
	if _, err := meshmetrics.New(nil); err == nil {
		t.Error("nil registerer accepted")
	}
	reg := prometheus.NewRegistry()
	if _, err := meshmetrics.New(reg); err != nil {
		t.Fatal(err)
	}
	if _, err := meshmetrics.New(reg); err == nil || !strings.Contains(err.Error(), "one Metrics per registry") {
		t.Errorf("second Metrics on one registry: %v", err)
	}
}
