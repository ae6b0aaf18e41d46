package xdsstatus_test

import (
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/shoalmesh/shoal/registry-istio/xdsclient"
	"github.com/shoalmesh/shoal/registry-istio/xdsresource"
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

// TestCollectorCounters: gRFC A78's counters. One invalid cluster counts
// once as an invalid update; istiod going away counts one server failure
// however many reconnects fail, and going away again after it answered
// counts a second.
func TestCollectorCounters(t *testing.T) {
	w := startWatching(t)
	reg := prometheus.NewRegistry()
	reg.MustRegister(xdsstatus.NewCollector(w.client, "xds:///greeter"))
	server := `grpc_target="xds:///greeter",grpc_xds_server="` + w.srv.Address() + `"`
	clusterType := `grpc_xds_resource_type="envoy.config.cluster.v3.Cluster"`
	// counter reads a counter by name and labels (comma-separated, any order).
	counter := func(name, labels string) float64 {
		t.Helper()
		want := strings.Split(labels, ",")
		slices.Sort(want)
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() != name {
				continue
			}
			for _, m := range mf.GetMetric() {
				var got []string
				for _, l := range m.GetLabel() {
					got = append(got, l.GetName()+`="`+l.GetValue()+`"`)
				}
				slices.Sort(got)
				if slices.Equal(got, want) {
					return m.GetCounter().GetValue()
				}
			}
		}
		return -1
	}
	if v := counter("grpc_xds_client_resource_updates_valid_total", server+","+clusterType); v < 1 {
		t.Errorf("valid cluster updates after the first version: %v, want at least 1", v)
	}
	if v := counter("grpc_xds_client_resource_updates_invalid_total", server+","+clusterType); v != 0 {
		t.Errorf("invalid cluster updates before a bad version: %v, want 0", v)
	}
	w.sendBadCluster()
	eventually(t, "an invalid cluster update counted", func() bool {
		return counter("grpc_xds_client_resource_updates_invalid_total", server+","+clusterType) >= 1
	})
	if v := counter("grpc_xds_client_resource_updates_invalid_total", server+","+clusterType); v != 1 {
		t.Errorf("invalid cluster updates after one bad version: %v, want 1", v)
	}
	if v := counter("grpc_xds_client_server_failure_total", server); v != 0 {
		t.Fatalf("server failures while istiod answers: %v, want 0", v)
	}

	w.srv.Stop()
	// Several reconnects fail while istiod is away (each sets a new retry time).
	retries := map[time.Time]bool{}
	eventually(t, "three failed reconnects", func() bool {
		if at := w.client.Status().NextRetryAt; !at.IsZero() {
			retries[at] = true
		}
		return len(retries) >= 3
	})
	if v := counter("grpc_xds_client_server_failure_total", server); v != 1 {
		t.Errorf("server failures after istiod went away and %d reconnects failed: %v, want 1", len(retries), v)
	}

	before := clusterResponses(w.client.Status())
	w.srv.Restart()
	eventually(t, "a cluster response from the restarted istiod", func() bool {
		return clusterResponses(w.client.Status()) > before
	})
	w.srv.Stop()
	eventually(t, "the second failure counted", func() bool { return counter("grpc_xds_client_server_failure_total", server) >= 2 })
	if v := counter("grpc_xds_client_server_failure_total", server); v != 2 {
		t.Errorf("server failures after istiod went away twice: %v, want 2", v)
	}
}

func clusterResponses(st xdsclient.Status) int {
	for _, ts := range st.Types {
		if ts.Type == xdsresource.ClusterType {
			return ts.Responses
		}
	}
	return 0
}
