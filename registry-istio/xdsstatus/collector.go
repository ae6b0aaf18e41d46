package xdsstatus

import (
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shoalmesh/shoal/registry-istio/xdsclient"
)

// oldAuthority is gRFC A78's grpc.xds.authority for resource names that
// are not xdstp:// names (all of istiod's), as grpc-go reports it.
const oldAuthority = "#old"

// Collector exports gRFC A78's xDS client gauges, read from the status of
// an xDS client at every scrape:
//
//   - grpc_xds_client_connected{grpc_target, grpc_xds_server}: 1 while an
//     ADS stream is open, else 0;
//   - grpc_xds_client_resources{grpc_target, grpc_xds_authority,
//     grpc_xds_cache_state, grpc_xds_resource_type}: how many watched
//     resources are in each cache state ("requested", "does_not_exist",
//     "acked", "nacked", "nacked_but_cached").
//
// A78's counters (resource_updates_valid/invalid, server_failure) need
// counts the status does not keep; they are not exported yet.
type Collector struct {
	src                  StatusSource
	target               string
	connected, resources *prometheus.Desc
}

// NewCollector returns the collector for src; target is the grpc.target
// label (the channel target in gRPC; Shoal shares one xDS client between
// its references, so name the application, e.g. its xds:/// target).
func NewCollector(src StatusSource, target string) *Collector {
	return &Collector{
		src: src, target: target,
		connected: prometheus.NewDesc("grpc_xds_client_connected",
			"Whether the xDS client has a working ADS stream to the xDS server.", []string{"grpc_target", "grpc_xds_server"}, nil),
		resources: prometheus.NewDesc("grpc_xds_client_resources",
			"Number of xDS resources by cache state.", []string{"grpc_target", "grpc_xds_authority", "grpc_xds_cache_state", "grpc_xds_resource_type"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.connected
	ch <- c.resources
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	st := c.src.Status()
	connected := 0.0
	if st.State == xdsclient.Ready {
		connected = 1
	}
	ch <- prometheus.MustNewConstMetric(c.connected, prometheus.GaugeValue, connected, c.target, st.Server)
	for _, ts := range st.Types {
		counts := map[string]int{}
		for _, rs := range ts.Resources {
			counts[cacheState(rs)]++
		}
		typ := strings.TrimPrefix(ts.Type.URL(), "type.googleapis.com/")
		for state, n := range counts {
			ch <- prometheus.MustNewConstMetric(c.resources, prometheus.GaugeValue, float64(n), c.target, oldAuthority, state, typ)
		}
	}
}

func cacheState(rs xdsclient.ResourceStatus) string {
	switch rs.State {
	case xdsclient.StateACKed:
		return "acked"
	case xdsclient.StateNACKed:
		if rs.Resource != nil {
			return "nacked_but_cached"
		}
		return "nacked"
	case xdsclient.StateNotFound:
		return "does_not_exist"
	}
	return "requested"
}
