package xdsresource

import (
	"fmt"
	"net"
	"strconv"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	"google.golang.org/protobuf/types/known/structpb"
)

func unmarshalEndpoints(b []byte) (string, *Endpoints, error) {
	pb := &endpointv3.ClusterLoadAssignment{}
	if err := decode(b, pb); err != nil {
		return "", nil, err
	}
	if pb.GetClusterName() == "" {
		return "", nil, errNoName
	}
	e, err := endpointsFromProto(pb)
	return pb.GetClusterName(), e, err
}

func endpointsFromProto(pb *endpointv3.ClusterLoadAssignment) (*Endpoints, error) {
	e := &Endpoints{ClusterName: pb.GetClusterName(), Localities: make([]LocalityEndpoints, 0, len(pb.GetEndpoints()))}
	seen := make(map[string]struct{})
	var maxPriority uint32
	priorities := make(map[uint32]bool)
	for i, lpb := range pb.GetEndpoints() {
		l := LocalityEndpoints{
			Locality: Locality{
				Region:  lpb.GetLocality().GetRegion(),
				Zone:    lpb.GetLocality().GetZone(),
				SubZone: lpb.GetLocality().GetSubZone(),
			},
			Priority:  lpb.GetPriority(),
			Endpoints: make([]Endpoint, 0, len(lpb.GetLbEndpoints())),
		}
		if w := lpb.GetLoadBalancingWeight(); w != nil {
			if w.GetValue() == 0 {
				return nil, fmt.Errorf("endpoints[%d] (locality %s): load_balancing_weight is 0; omit it or make it positive", i, l.Locality)
			}
			l.Weight = w.GetValue()
		}
		priorities[l.Priority] = true
		maxPriority = max(maxPriority, l.Priority)
		for j, lb := range lpb.GetLbEndpoints() {
			ep, err := endpointFromProto(lb)
			if err != nil {
				return nil, fmt.Errorf("endpoints[%d].lb_endpoints[%d]: %w", i, j, err)
			}
			if _, dup := seen[ep.Address]; dup {
				// Envoy accepts repeats; the first one counts.
				e.Duplicates++
				continue
			}
			seen[ep.Address] = struct{}{}
			l.Endpoints = append(l.Endpoints, ep)
		}
		e.Localities = append(e.Localities, l)
	}
	for p := uint32(0); p < maxPriority; p++ {
		if !priorities[p] {
			return nil, fmt.Errorf("priorities are not contiguous: %d is used but %d is missing", maxPriority, p)
		}
	}
	return e, nil
}

func endpointFromProto(pb *endpointv3.LbEndpoint) (Endpoint, error) {
	ep := Endpoint{Weight: 1}
	e := pb.GetEndpoint()
	if e == nil {
		return ep, fmt.Errorf("no endpoint (named endpoints are not supported)")
	}
	sa := e.GetAddress().GetSocketAddress()
	if sa == nil {
		return ep, fmt.Errorf("endpoint.address is not a socket_address")
	}
	if sa.GetAddress() == "" {
		return ep, fmt.Errorf("endpoint.address.socket_address.address is empty")
	}
	port := sa.GetPortValue()
	if port == 0 || port > 65535 {
		return ep, fmt.Errorf("endpoint %s: port %d is outside 1-65535", sa.GetAddress(), port)
	}
	ep.Address = net.JoinHostPort(sa.GetAddress(), strconv.FormatUint(uint64(port), 10))
	ep.Hostname = e.GetHostname()
	if w := pb.GetLoadBalancingWeight(); w != nil {
		if w.GetValue() == 0 {
			return ep, fmt.Errorf("endpoint %s: load_balancing_weight is 0; omit it or make it positive", ep.Address)
		}
		ep.Weight = w.GetValue()
	}
	ep.Health = healthFromProto(pb.GetHealthStatus())
	ep.Labels = labelsFromMetadata(pb.GetMetadata())
	return ep, nil
}

func healthFromProto(h corev3.HealthStatus) Health {
	switch h {
	case corev3.HealthStatus_HEALTHY:
		return HealthHealthy
	case corev3.HealthStatus_UNHEALTHY:
		return HealthUnhealthy
	case corev3.HealthStatus_DRAINING:
		return HealthDraining
	case corev3.HealthStatus_TIMEOUT:
		return HealthTimeout
	case corev3.HealthStatus_DEGRADED:
		return HealthDegraded
	}
	return HealthUnknown
}

// labelsFromMetadata flattens the string fields of the "envoy.lb" metadata
// (as is) and of the "istio" metadata (prefixed "istio.").
func labelsFromMetadata(md *corev3.Metadata) map[string]string {
	var out map[string]string
	add := func(prefix string, s *structpb.Struct) {
		for k, v := range s.GetFields() {
			sv, ok := v.GetKind().(*structpb.Value_StringValue)
			if !ok {
				continue
			}
			if out == nil {
				out = make(map[string]string)
			}
			out[prefix+k] = sv.StringValue
		}
	}
	add("", md.GetFilterMetadata()["envoy.lb"])
	add("istio.", md.GetFilterMetadata()["istio"])
	return out
}
