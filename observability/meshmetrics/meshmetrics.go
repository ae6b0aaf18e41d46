package meshmetrics

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shoalmesh/shoal/sdk/observer"
)

// The metric names. Envoy's closest cluster statistics are named beside
// each, for readers who know those.
const (
	// EndpointsTotal is a gauge of a reference's distinct endpoints
	// (Envoy: membership_total), label reference.
	EndpointsTotal = "shoal_client_endpoints"
	// EndpointsReady is a gauge of those that are ready (Envoy:
	// membership_healthy), label reference.
	EndpointsReady = "shoal_client_endpoints_ready"
	// Ejections counts outlier ejections (Envoy:
	// outlier_detection.ejections_enforced_total), label destination.
	Ejections = "shoal_client_outlier_ejections_total"
	// Overflows counts calls and retries refused by a circuit breaker
	// (Envoy: upstream_rq_pending_overflow, upstream_rq_retry_overflow),
	// labels destination and limit ("max_requests", "max_retries").
	Overflows = "shoal_client_circuit_breaker_overflows_total"
	// Retries counts retries, not first tries (Envoy: upstream_rq_retry),
	// label destination.
	Retries = "shoal_client_retries_total"
	// Faults counts injected faults (Envoy: fault.delays_injected,
	// fault.aborts_injected), labels service and fault ("delay", "abort").
	Faults = "shoal_client_faults_injected_total"
)

// Metrics records the mesh client's events; it implements
// observer.Observer. It is safe for concurrent use.
type Metrics struct {
	observer.Nop
	total, ready                       *prometheus.GaugeVec
	ejections, overflows, retries, flt *prometheus.CounterVec
	// Overflow and Fault labels, resolved once per label value.
	limits [2]string
	faults [2]string
}

var _ observer.Observer = (*Metrics)(nil)

// New registers the metrics with reg and returns them.
func New(reg prometheus.Registerer) (*Metrics, error) {
	if reg == nil {
		return nil, errors.New("meshmetrics: nil registerer; pass the registry the admin endpoint serves (istiometrics.Metrics.Registry())")
	}
	m := &Metrics{
		total:     prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: EndpointsTotal, Help: "Distinct endpoints of a reference's clusters."}, []string{"reference"}),
		ready:     prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: EndpointsReady, Help: "Ready endpoints of a reference's clusters."}, []string{"reference"}),
		ejections: prometheus.NewCounterVec(prometheus.CounterOpts{Name: Ejections, Help: "Endpoints ejected by outlier detection."}, []string{"destination"}),
		overflows: prometheus.NewCounterVec(prometheus.CounterOpts{Name: Overflows, Help: "Calls or retries refused by a circuit breaker."}, []string{"destination", "limit"}),
		retries:   prometheus.NewCounterVec(prometheus.CounterOpts{Name: Retries, Help: "Retries of calls (first tries not counted)."}, []string{"destination"}),
		flt:       prometheus.NewCounterVec(prometheus.CounterOpts{Name: Faults, Help: "Faults injected by routes."}, []string{"service", "fault"}),
		limits:    [2]string{observer.MaxRequests.String(), observer.MaxRetries.String()},
		faults:    [2]string{observer.Delay.String(), observer.Abort.String()},
	}
	var errs []error
	for _, c := range []prometheus.Collector{m.total, m.ready, m.ejections, m.overflows, m.retries, m.flt} {
		if err := reg.Register(c); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("meshmetrics: %w; use one Metrics per registry", err)
	}
	return m, nil
}

// Endpoints implements observer.Observer.
func (m *Metrics) Endpoints(reference string, ready, total int) {
	m.total.WithLabelValues(reference).Set(float64(total))
	m.ready.WithLabelValues(reference).Set(float64(ready))
}

// Ejected implements observer.Observer.
func (m *Metrics) Ejected(destination, _ string) {
	m.ejections.WithLabelValues(destination).Inc()
}

// Overflow implements observer.Observer.
func (m *Metrics) Overflow(destination string, limit observer.Limit) {
	m.overflows.WithLabelValues(destination, m.limits[min(int(limit), 1)]).Inc()
}

// Retry implements observer.Observer.
func (m *Metrics) Retry(destination string) {
	m.retries.WithLabelValues(destination).Inc()
}

// Fault implements observer.Observer.
func (m *Metrics) Fault(service string, fault observer.Fault) {
	m.flt.WithLabelValues(service, m.faults[min(int(fault), 1)]).Inc()
}
