package xdsresource

// Health is the health status istiod reports for an endpoint.
type Health int

// Health states, following Envoy's core.HealthStatus.
const (
	HealthUnknown Health = iota
	HealthHealthy
	HealthUnhealthy
	HealthDraining
	HealthTimeout
	HealthDegraded
)

// MarshalText renders the state by its Envoy name.
func (h Health) MarshalText() ([]byte, error) { return []byte(h.String()), nil }

// String returns the Envoy name of the state.
func (h Health) String() string {
	switch h {
	case HealthHealthy:
		return "HEALTHY"
	case HealthUnhealthy:
		return "UNHEALTHY"
	case HealthDraining:
		return "DRAINING"
	case HealthTimeout:
		return "TIMEOUT"
	case HealthDegraded:
		return "DEGRADED"
	}
	return "UNKNOWN"
}

// Serving reports whether calls may be sent to an endpoint in this state
// (UNKNOWN, HEALTHY and DEGRADED, as in grpc-go).
func (h Health) Serving() bool {
	return h == HealthUnknown || h == HealthHealthy || h == HealthDegraded
}

// Endpoints is a validated ClusterLoadAssignment.
type Endpoints struct {
	// ClusterName is the EDS service name the assignment answers.
	ClusterName string
	Localities  []LocalityEndpoints
	// Duplicates counts endpoints dropped because an earlier one had the
	// same address (Envoy accepts such repeats; the first one is kept).
	Duplicates int
}

// ResourceName implements Resource.
func (e *Endpoints) ResourceName() string { return e.ClusterName }

// ResourceType implements Resource.
func (e *Endpoints) ResourceType() Type { return EndpointsType }

// Locality identifies where endpoints run.
type Locality struct {
	Region, Zone, SubZone string
}

// String formats the locality as region/zone/subzone.
func (l Locality) String() string { return l.Region + "/" + l.Zone + "/" + l.SubZone }

// LocalityEndpoints are the endpoints of one locality and priority.
type LocalityEndpoints struct {
	Locality Locality
	// Weight is the locality's load balancing weight (0: not set).
	Weight uint32
	// Priority is 0 for the most preferred group.
	Priority  uint32
	Endpoints []Endpoint
}

// Endpoint is one address that serves the cluster.
type Endpoint struct {
	// Address is `ip:port`.
	Address string
	// Weight is the endpoint's load balancing weight (1 when not set).
	Weight uint32
	Health Health
	// Hostname is the endpoint's host name, if istiod sent one.
	Hostname string
	// Labels are the string fields of the endpoint's "envoy.lb" metadata
	// (subset keys) plus "istio" metadata fields under an "istio." prefix,
	// for example "istio.workload".
	Labels map[string]string
}
