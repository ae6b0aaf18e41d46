package xdsresource

import "time"

// LBPolicy is a cluster's load balancing policy.
type LBPolicy int

// Load balancing policies.
const (
	LBRoundRobin LBPolicy = iota
	LBLeastRequest
	LBRingHash
	LBRandom
	LBMaglev
)

// MarshalText renders the policy by its Envoy name.
func (p LBPolicy) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// String returns the Envoy name of the policy.
func (p LBPolicy) String() string {
	switch p {
	case LBRoundRobin:
		return "ROUND_ROBIN"
	case LBLeastRequest:
		return "LEAST_REQUEST"
	case LBRingHash:
		return "RING_HASH"
	case LBRandom:
		return "RANDOM"
	case LBMaglev:
		return "MAGLEV"
	}
	return "UNKNOWN"
}

// Cluster is a validated EDS cluster.
type Cluster struct {
	// Name is `outbound|port|subset|host` from istiod.
	Name string
	// EDSServiceName is the ClusterLoadAssignment to watch; it defaults to
	// Name.
	EDSServiceName string
	LBPolicy       LBPolicy
	// RingHash is set when LBPolicy is LBRingHash.
	RingHash *RingHashConfig
	// LeastRequestChoices is the number of endpoints compared by
	// LBLeastRequest (default 2).
	LeastRequestChoices uint32
	// MaxRequests is the circuit breaker limit on concurrent calls
	// (default 1024, as in Envoy and grpc-go).
	MaxRequests uint32
	// OutlierDetection is nil when the cluster has none.
	OutlierDetection *OutlierDetection
	// TLS is set when istiod asks for mutual TLS to the endpoints (a
	// DestinationRule with tls.mode ISTIO_MUTUAL); nil means plaintext.
	TLS *UpstreamTLS
	// ConnectTimeout is the connection establishment limit (0: default).
	ConnectTimeout time.Duration
}

// ResourceName implements Resource.
func (c *Cluster) ResourceName() string { return c.Name }

// ResourceType implements Resource.
func (c *Cluster) ResourceType() Type { return ClusterType }

// RingHashConfig sizes a consistent hash ring.
type RingHashConfig struct {
	MinRingSize uint64
	MaxRingSize uint64
}

// OutlierDetection ejects endpoints that keep failing.
type OutlierDetection struct {
	Interval           time.Duration
	BaseEjectionTime   time.Duration
	MaxEjectionTime    time.Duration
	MaxEjectionPercent uint32
	// Consecutive5xx ejects after this many consecutive server errors
	// (0: disabled).
	Consecutive5xx uint32
	// ConsecutiveGatewayFailure ejects after this many consecutive gateway
	// errors (0: disabled).
	ConsecutiveGatewayFailure uint32
	// ConsecutiveLocalOriginFailure ejects after this many consecutive
	// connection-level failures (0: disabled).
	ConsecutiveLocalOriginFailure uint32
}

// Defaults shared with Envoy and grpc-go.
const (
	DefaultMaxRequests         = 1024
	DefaultLeastRequestChoices = 2
	DefaultMinRingSize         = 1024
	DefaultMaxRingSize         = 8 * 1024 * 1024
)
