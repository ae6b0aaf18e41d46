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
//     "acked", "nacked", "nacked_but_cached");
//
// and its counters, as OpenTelemetry's Prometheus exporter names them:
//
//   - grpc_xds_client_resource_updates_valid_total and
//     grpc_xds_client_resource_updates_invalid_total{grpc_target,
//     grpc_xds_server, grpc_xds_resource_type}: resources received that
//     were valid (unchanged ones included) or invalid (NACKed);
//   - grpc_xds_client_server_failure_total{grpc_target, grpc_xds_server}:
//     times istiod went from healthy to unhealthy (gRFC A57).
type Collector struct {
	src                  StatusSource
	target               string
	connected, resources *prometheus.Desc
	valid, invalid       *prometheus.Desc
	serverFailure        *prometheus.Desc
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
		valid: prometheus.NewDesc("grpc_xds_client_resource_updates_valid_total",
			"Resources received that were valid, unchanged ones included.", []string{"grpc_target", "grpc_xds_server", "grpc_xds_resource_type"}, nil),
		invalid: prometheus.NewDesc("grpc_xds_client_resource_updates_invalid_total",
			"Resources received that were invalid.", []string{"grpc_target", "grpc_xds_server", "grpc_xds_resource_type"}, nil),
		serverFailure: prometheus.NewDesc("grpc_xds_client_server_failure_total",
			"Times the xDS server went from healthy to unhealthy.", []string{"grpc_target", "grpc_xds_server"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.connected
	ch <- c.resources
	ch <- c.valid
	ch <- c.invalid
	ch <- c.serverFailure
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	st := c.src.Status()
	connected := 0.0
	if st.State == xdsclient.Ready {
		connected = 1
	}
	ch <- prometheus.MustNewConstMetric(c.connected, prometheus.GaugeValue, connected, c.target, st.Server)
	ch <- prometheus.MustNewConstMetric(c.serverFailure, prometheus.CounterValue, float64(st.ServerFailures), c.target, st.Server)
	for _, ts := range st.Types {
		counts := map[string]int{}
		for _, rs := range ts.Resources {
			counts[cacheState(rs)]++
		}
		typ := strings.TrimPrefix(ts.Type.URL(), "type.googleapis.com/")
		if ts.Responses > 0 {
			ch <- prometheus.MustNewConstMetric(c.valid, prometheus.CounterValue, float64(ts.ValidUpdates), c.target, st.Server, typ)
			ch <- prometheus.MustNewConstMetric(c.invalid, prometheus.CounterValue, float64(ts.InvalidUpdates), c.target, st.Server, typ)
		}
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
