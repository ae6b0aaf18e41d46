package xdsstatus_test

import (
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/shoalmesh/shoal/registry-istio/xdsstatus"
)

// TestCollector: gRFC A78's gauges follow the client: connected, the
// watched cluster acked, then nacked_but_cached after an invalid version.
func TestCollector(t *testing.T) {
	w := startWatching(t)
	reg := prometheus.NewRegistry()
	reg.MustRegister(xdsstatus.NewCollector(w.client, "xds:///greeter"))
	clusterType := `grpc_xds_resource_type="envoy.config.cluster.v3.Cluster"`
	want := func(state string) string {
		return `grpc_xds_client_resources{grpc_target="xds:///greeter",grpc_xds_authority="#old",grpc_xds_cache_state="` + state + `",` + clusterType + `} 1`
	}
	scrape := func() string {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		for _, mf := range mfs {
			for _, m := range mf.GetMetric() {
				b.WriteString(mf.GetName() + "{")
				for i, l := range m.GetLabel() {
					if i > 0 {
						b.WriteString(",")
					}
					b.WriteString(l.GetName() + `="` + l.GetValue() + `"`)
				}
				b.WriteString("} " + strconv.FormatFloat(m.GetGauge().GetValue(), 'g', -1, 64) + "\n")
			}
		}
		return b.String()
	}
	eventually(t, "connected with the cluster acked", func() bool {
		s := scrape()
		return strings.Contains(s, want("acked")) && strings.Contains(s, `grpc_xds_client_connected{grpc_target="xds:///greeter",grpc_xds_server="`+w.srv.Address()+`"} 1`)
	})
	w.sendBadCluster()
	eventually(t, "nacked_but_cached", func() bool { return strings.Contains(scrape(), want("nacked_but_cached")) })
	if n, err := testutil.GatherAndCount(reg, "grpc_xds_client_resources"); err != nil || n == 0 {
		t.Errorf("resources series: %d, %v", n, err)
	}
}
