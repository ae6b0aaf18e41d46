package mesh

import (
	"fmt"
	"time"
)

// Service is a named set of endpoints with its traffic policy and subsets
// (a mesh host with its Istio DestinationRule).
type Service struct {
	// Name is the interface name or mesh host, e.g. "greet.GreetService".
	Name string
	// Endpoints serve the service.
	Endpoints []Endpoint
	// Policy applies to every call to the service.
	Policy ClusterPolicy
	// Subsets are named groups of endpoints, e.g. by version label.
	Subsets []Subset
}

// Subset is a named group of a service's endpoints.
type Subset struct {
	// Name is what routes use in Destination.Subset, e.g. "v1".
	Name string
	// Labels select the subset's endpoints among the service's endpoints.
	Labels map[string]string
	// Endpoints, when non-empty, are the subset's endpoints as given (xDS
	// sends each subset's endpoints as a cluster of its own); Labels are
	// then informational.
	Endpoints []Endpoint
	// Policy overrides the service's policy block by block: a non-nil
	// LoadBalancer, ConnectionPool, OutlierDetection or TLS replaces the
	// service's one.
	Policy ClusterPolicy
}

// ClusterPolicy is a DestinationRule traffic policy. Nil blocks mean the
// defaults: round robin, no pool limits, no outlier detection, plaintext.
type ClusterPolicy struct {
	LoadBalancer     *LoadBalancer
	ConnectionPool   *ConnectionPool
	OutlierDetection *OutlierDetection
	// TLS secures calls to the endpoints; nil is plaintext.
	TLS *TLS
}

func (p ClusterPolicy) overriddenBy(o ClusterPolicy) ClusterPolicy {
	if o.LoadBalancer != nil {
		p.LoadBalancer = o.LoadBalancer
	}
	if o.ConnectionPool != nil {
		p.ConnectionPool = o.ConnectionPool
	}
	if o.OutlierDetection != nil {
		p.OutlierDetection = o.OutlierDetection
	}
	if o.TLS != nil {
		p.TLS = o.TLS
	}
	return p
}

// LBKind is a load-balancing algorithm.
type LBKind uint8

// The load balancing kinds. LBDefault lets the consumer choose (round robin
// unless configured otherwise).
const (
	LBDefault LBKind = iota
	LBRoundRobin
	LBLeastRequest
	LBRandom
	LBRingHash
	LBMaglev
	LBPassthrough
)

var lbKindNames = [...]string{"default", "round_robin", "least_request", "random", "ring_hash", "maglev", "passthrough"}

func (k LBKind) String() string {
	if int(k) < len(lbKindNames) {
		return lbKindNames[k]
	}
	return fmt.Sprintf("lbkind(%d)", uint8(k))
}

// ParseLBKind parses a kind name such as "round_robin" or "ring_hash";
// dashes and upper case are accepted too (Istio writes ROUND_ROBIN).
func ParseLBKind(s string) (LBKind, error) {
	t := normalizeName(s)
	for i, n := range lbKindNames {
		if n == t {
			return LBKind(i), nil
		}
	}
	if t == "unspecified" || t == "" {
		return LBDefault, nil
	}
	return 0, fmt.Errorf("unknown load balancer %q; use round_robin, least_request, random, ring_hash, maglev or passthrough", s)
}

// LoadBalancer chooses how calls spread over a cluster's endpoints.
type LoadBalancer struct {
	Kind LBKind
	// ConsistentHash is required for LBRingHash and LBMaglev.
	ConsistentHash *ConsistentHash
	// WarmupDuration ramps new endpoints' share up over this time.
	WarmupDuration time.Duration
	// Locality, when not nil, weights traffic by locality (Istio
	// localityLbSetting).
	Locality *LocalityLB
}

// LocalityLB is Istio's localityLbSetting. Localities are written
// "region/zone/subzone"; a trailing part may be "*".
type LocalityLB struct {
	// Distribute sends the traffic of callers in From to the listed
	// localities by weight (percentages summing to 100).
	Distribute []LocalityDistribute
	// Failover names, per region, the region to fail over to.
	Failover []LocalityFailover
	// FailoverPriority lists label keys; endpoints sharing more of them
	// with the caller get a better priority.
	FailoverPriority []string
}

// LocalityDistribute is one localityLbSetting.distribute entry.
type LocalityDistribute struct {
	From string
	To   map[string]uint32
}

// LocalityFailover is one localityLbSetting.failover entry.
type LocalityFailover struct {
	From, To string
}

// HashSource says where a consistent-hash key comes from.
type HashSource uint8

// The hash key sources (Istio consistentHash hashKey).
const (
	// HashHeader hashes a request header or Triple attachment.
	HashHeader HashSource = iota + 1
	// HashCookie hashes an HTTP cookie (HTTP/1 calls only).
	HashCookie
	// HashSourceIP hashes the caller's address.
	HashSourceIP
	// HashQueryParameter hashes an HTTP query parameter (HTTP/1 calls only).
	HashQueryParameter
)

// ConsistentHash configures ring-hash or Maglev balancing.
type ConsistentHash struct {
	Source HashSource
	// Name is the header, attachment, cookie or parameter name.
	Name string
	// MinRingSize is the ring-hash ring size; 0 means 1024, Envoy's default.
	MinRingSize uint64
	// MaglevTableSize is the Maglev table size; 0 means 65537.
	MaglevTableSize uint64
}

// ConnectionPool limits connections and requests to each endpoint. Zero
// fields mean no limit (or the transport's default).
type ConnectionPool struct {
	MaxConnections           uint32
	ConnectTimeout           time.Duration
	MaxPendingRequests       uint32
	MaxRequests              uint32
	MaxRequestsPerConnection uint32
	MaxRetries               uint32
	IdleTimeout              time.Duration
	MaxConcurrentStreams     uint32
}

// OutlierDetection ejects failing endpoints for a while. Zero counters are
// disabled.
type OutlierDetection struct {
	Consecutive5xxErrors           uint32
	ConsecutiveGatewayErrors       uint32
	ConsecutiveLocalOriginFailures uint32
	SplitExternalLocalOriginErrors bool
	// Interval between ejection sweeps.
	Interval time.Duration
	// BaseEjectionTime is multiplied by the number of ejections so far.
	BaseEjectionTime time.Duration
	// MaxEjectionPercent of the cluster may be ejected at once, 0 to 100.
	MaxEjectionPercent uint32
	// MinHealthPercent disables ejection when fewer endpoints are healthy,
	// 0 to 100.
	MinHealthPercent uint32
}

// Cluster is a resolved destination: the endpoints of a service or one of
// its subsets and the effective policy. It is part of a Snapshot and
// immutable.
type Cluster struct {
	dest      Destination
	policy    ClusterPolicy
	endpoints []*Endpoint
	ready     []*Endpoint
}

// Destination returns the service and subset the cluster stands for.
func (c *Cluster) Destination() Destination { return c.dest }

// Policy returns the effective policy, subset overrides applied.
func (c *Cluster) Policy() ClusterPolicy { return c.policy }

// Endpoints returns all endpoints, whatever their health. Shared: do not
// modify.
func (c *Cluster) Endpoints() []*Endpoint { return c.endpoints }

// Ready returns the endpoints calls should go to: the healthy and
// unknown-health ones, or the degraded ones when there are no others.
// Shared: do not modify.
func (c *Cluster) Ready() []*Endpoint { return c.ready }

func newCluster(dest Destination, policy ClusterPolicy, eps []*Endpoint) *Cluster {
	c := &Cluster{dest: dest, policy: policy, endpoints: eps}
	var degraded []*Endpoint
	for _, e := range eps {
		switch {
		case e.Health == HealthDegraded:
			degraded = append(degraded, e)
		case e.Ready():
			c.ready = append(c.ready, e)
		}
	}
	if len(c.ready) == 0 {
		c.ready = degraded
	}
	return c
}
