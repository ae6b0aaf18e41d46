package xdsresource

import (
	"fmt"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
)

func unmarshalCluster(b []byte) (string, *Cluster, error) {
	pb := &clusterv3.Cluster{}
	if err := decode(b, pb); err != nil {
		return "", nil, err
	}
	if pb.GetName() == "" {
		return "", nil, errNoName
	}
	c, err := clusterFromProto(pb)
	return pb.GetName(), c, err
}

func clusterFromProto(pb *clusterv3.Cluster) (*Cluster, error) {
	c := &Cluster{
		Name:                pb.GetName(),
		MaxRequests:         DefaultMaxRequests,
		LeastRequestChoices: DefaultLeastRequestChoices,
	}
	if ct := pb.GetClusterType(); ct != nil {
		return nil, fmt.Errorf("custom cluster_type %q is not supported: istiod's grpc generator sends EDS clusters only", ct.GetName())
	}
	if pb.GetType() != clusterv3.Cluster_EDS {
		return nil, fmt.Errorf("type %s is not supported: only EDS clusters are (istiod sends STATIC/DNS clusters to Envoy, not to proxyless clients)", pb.GetType())
	}
	eds := pb.GetEdsClusterConfig()
	if err := fromADS("eds_cluster_config.eds_config", eds.GetEdsConfig()); err != nil {
		return nil, err
	}
	c.EDSServiceName = eds.GetServiceName()
	if c.EDSServiceName == "" {
		c.EDSServiceName = c.Name
	}
	if err := lbFromProto(pb, c); err != nil {
		return nil, err
	}
	for _, th := range pb.GetCircuitBreakers().GetThresholds() {
		if th.GetPriority() != corev3.RoutingPriority_DEFAULT {
			continue
		}
		if mr := th.GetMaxRequests(); mr != nil {
			c.MaxRequests = mr.GetValue()
		}
	}
	od, err := outlierFromProto(pb.GetOutlierDetection())
	if err != nil {
		return nil, fmt.Errorf("outlier_detection: %w", err)
	}
	c.OutlierDetection = od
	if ts := pb.GetTransportSocket(); ts != nil {
		if c.TLS, err = upstreamTLSFromProto(ts); err != nil {
			return nil, err
		}
	}
	if c.ConnectTimeout, err = duration("connect_timeout", pb.GetConnectTimeout()); err != nil {
		return nil, err
	}
	return c, nil
}

func lbFromProto(pb *clusterv3.Cluster, c *Cluster) error {
	if pb.GetLoadBalancingPolicy() != nil {
		return fmt.Errorf("load_balancing_policy (typed LB extensions) is not supported; use lb_policy, as istiod does")
	}
	switch pb.GetLbPolicy() {
	case clusterv3.Cluster_ROUND_ROBIN:
		c.LBPolicy = LBRoundRobin
	case clusterv3.Cluster_LEAST_REQUEST:
		c.LBPolicy = LBLeastRequest
		if n := pb.GetLeastRequestLbConfig().GetChoiceCount(); n != nil {
			if n.GetValue() < 2 {
				return fmt.Errorf("least_request_lb_config.choice_count %d is below 2", n.GetValue())
			}
			c.LeastRequestChoices = n.GetValue()
		}
	case clusterv3.Cluster_RING_HASH:
		c.LBPolicy = LBRingHash
		rh := &RingHashConfig{MinRingSize: DefaultMinRingSize, MaxRingSize: DefaultMaxRingSize}
		cfg := pb.GetRingHashLbConfig()
		if cfg.GetHashFunction() != clusterv3.Cluster_RingHashLbConfig_XX_HASH {
			return fmt.Errorf("ring_hash_lb_config.hash_function %s is not supported (use XX_HASH)", cfg.GetHashFunction())
		}
		if v := cfg.GetMinimumRingSize(); v != nil {
			rh.MinRingSize = v.GetValue()
		}
		if v := cfg.GetMaximumRingSize(); v != nil {
			rh.MaxRingSize = v.GetValue()
		}
		if rh.MinRingSize == 0 || rh.MinRingSize > rh.MaxRingSize || rh.MaxRingSize > DefaultMaxRingSize {
			return fmt.Errorf("ring_hash_lb_config: need 0 < minimum_ring_size (%d) <= maximum_ring_size (%d) <= %d",
				rh.MinRingSize, rh.MaxRingSize, DefaultMaxRingSize)
		}
		c.RingHash = rh
	case clusterv3.Cluster_RANDOM:
		c.LBPolicy = LBRandom
	case clusterv3.Cluster_MAGLEV:
		c.LBPolicy = LBMaglev
	default:
		return fmt.Errorf("lb_policy %s is not supported (use ROUND_ROBIN, LEAST_REQUEST, RING_HASH, RANDOM or MAGLEV)", pb.GetLbPolicy())
	}
	return nil
}

func outlierFromProto(pb *clusterv3.OutlierDetection) (*OutlierDetection, error) {
	if pb == nil {
		return nil, nil
	}
	// Envoy's defaults.
	od := &OutlierDetection{
		Interval:           10e9,
		BaseEjectionTime:   30e9,
		MaxEjectionTime:    300e9,
		MaxEjectionPercent: 10,
		Consecutive5xx:     5,
	}
	var err error
	if pb.GetInterval() != nil {
		if od.Interval, err = duration("interval", pb.GetInterval()); err != nil {
			return nil, err
		}
	}
	if pb.GetBaseEjectionTime() != nil {
		if od.BaseEjectionTime, err = duration("base_ejection_time", pb.GetBaseEjectionTime()); err != nil {
			return nil, err
		}
	}
	if pb.GetMaxEjectionTime() != nil {
		if od.MaxEjectionTime, err = duration("max_ejection_time", pb.GetMaxEjectionTime()); err != nil {
			return nil, err
		}
	}
	if v := pb.GetMaxEjectionPercent(); v != nil {
		if v.GetValue() > 100 {
			return nil, fmt.Errorf("max_ejection_percent %d is above 100", v.GetValue())
		}
		od.MaxEjectionPercent = v.GetValue()
	}
	if v := pb.GetConsecutive_5Xx(); v != nil {
		od.Consecutive5xx = v.GetValue()
	}
	if v := pb.GetEnforcingConsecutive_5Xx(); v != nil && v.GetValue() == 0 {
		od.Consecutive5xx = 0
	}
	if v := pb.GetConsecutiveGatewayFailure(); v != nil && pb.GetEnforcingConsecutiveGatewayFailure().GetValue() > 0 {
		od.ConsecutiveGatewayFailure = v.GetValue()
	}
	if v := pb.GetConsecutiveLocalOriginFailure(); v != nil && pb.GetSplitExternalLocalOriginErrors() {
		od.ConsecutiveLocalOriginFailure = v.GetValue()
	}
	return od, nil
}
