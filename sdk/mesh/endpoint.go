package mesh

import "strconv"

// LabelService is the endpoint label a registry sets to the host of the
// service whose cluster listed the endpoint (Istio's Service FQDN, e.g.
// "greeter.default.svc.cluster.local"), for telemetry that reports the
// service behind a call (Istio's destination_service).
const LabelService = "mesh.shoal.io/service"

// Endpoint is one address serving a service.
type Endpoint struct {
	// Address is host:port, e.g. "10.0.0.7:50051" or "[::1]:50051".
	Address string
	// Weight is the endpoint's share of load relative to its peers. Zero
	// means the default, 1.
	Weight uint32
	// Labels are the workload's labels (Istio "version: v1", Dubbo "group").
	Labels map[string]string
	// Locality says where the endpoint runs.
	Locality Locality
	// Health is the endpoint's health as the control plane reports it.
	Health HealthStatus
	// Priority is the EDS priority of the endpoint's locality: 0 is used
	// first, higher priorities take traffic only as lower ones become
	// unhealthy (locality failover).
	Priority uint32
}

// Ready reports whether calls may be sent to the endpoint at all: its health
// is unknown, healthy or degraded.
func (e *Endpoint) Ready() bool {
	return e.Health == HealthUnknown || e.Health == HealthHealthy || e.Health == HealthDegraded
}

// Locality is a region / zone / sub-zone triple, as in Kubernetes topology
// labels and Envoy localities.
type Locality struct {
	Region  string
	Zone    string
	SubZone string
}

// String returns "region/zone/subzone".
func (l Locality) String() string { return l.Region + "/" + l.Zone + "/" + l.SubZone }

// HealthStatus is an endpoint's health, with the states Envoy's EDS knows.
type HealthStatus uint8

// The health states. Unknown is the zero value and is treated as healthy,
// as Envoy does.
const (
	HealthUnknown HealthStatus = iota
	HealthHealthy
	HealthUnhealthy
	HealthDraining
	HealthTimeout
	HealthDegraded
)

var healthNames = [...]string{"unknown", "healthy", "unhealthy", "draining", "timeout", "degraded"}

func (h HealthStatus) String() string {
	if int(h) < len(healthNames) {
		return healthNames[h]
	}
	return "health(" + strconv.Itoa(int(h)) + ")"
}

// ParseHealthStatus parses a health name such as "healthy" or "draining".
func ParseHealthStatus(s string) (HealthStatus, bool) {
	for i, n := range healthNames {
		if n == s {
			return HealthStatus(i), true
		}
	}
	return 0, false
}

// selects reports whether every label of selector is present in labels
// with the same value (a Kubernetes equality selector; empty selects all).
func selects(selector, labels map[string]string) bool {
	for k, v := range selector {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}
