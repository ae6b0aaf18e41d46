package istiometrics_test

import (
	"context"
	"flag"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/goleak"

	"github.com/shoalmesh/shoal/observability/istiometrics"
	"github.com/shoalmesh/shoal/observability/peer"
	"github.com/shoalmesh/shoal/sdk/call"
	"github.com/shoalmesh/shoal/sdk/filter"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// samples returns every sample of family name in g, as label maps with values.
func samples(t testing.TB, g prometheus.Gatherer, name string) []sample {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var out []sample
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			s := sample{labels: map[string]string{}}
			for _, l := range m.GetLabel() {
				s.labels[l.GetName()] = l.GetValue()
			}
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				s.value = m.GetCounter().GetValue()
			case dto.MetricType_HISTOGRAM:
				s.value = float64(m.GetHistogram().GetSampleCount())
				s.buckets = m.GetHistogram().GetBucket()
			}
			out = append(out, s)
		}
	}
	return out
}

type sample struct {
	labels  map[string]string
	value   float64
	buckets []*dto.Bucket
}

// sumBy adds the samples up per value of label.
func sumBy(ss []sample, label string) map[string]float64 {
	out := map[string]float64{}
	for _, s := range ss {
		out[s.labels[label]] += s.value
	}
	return out
}

func TestBothSidesCountTheSameCalls(t *testing.T) {
	a := startApps(t, true)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for i := range 20 {
		if err := a.unary(ctx, fmt.Sprint("hello ", i)); err != nil {
			t.Fatal(err)
		}
	}
	for range 3 {
		if err := a.unary(ctx, "fail"); call.CodeOf(err) != call.NotFound {
			t.Fatalf("fail call: %v, want NOT_FOUND", err)
		}
	}
	if err := a.chat(ctx, 4); err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{"0": 21, "5": 3} // 20 unary + 1 stream OK, 3 NOT_FOUND
	for _, side := range []struct {
		reporter string
		g        prometheus.Gatherer
	}{{"source", a.consumerMetrics.Registry()}, {"destination", a.providerMetrics.Registry()}} {
		reqs := samples(t, side.g, istiometrics.RequestsTotal)
		if got := sumBy(reqs, "reporter"); len(got) != 1 || got[side.reporter] != 24 {
			t.Errorf("%s: requests by reporter = %v, want 24 all %s", side.reporter, got, side.reporter)
		}
		if got := sumBy(reqs, "grpc_response_status"); !maps.Equal(got, want) {
			t.Errorf("%s: requests by grpc status = %v, want %v", side.reporter, got, want)
		}
		// 23 unary requests and 4 stream messages each way; failed calls answer none.
		if got := sumBy(samples(t, side.g, istiometrics.RequestMessagesTotal), "reporter")[side.reporter]; got != 27 {
			t.Errorf("%s: request messages = %v, want 27", side.reporter, got)
		}
		if got := sumBy(samples(t, side.g, istiometrics.ResponseMessagesTotal), "reporter")[side.reporter]; got != 24 {
			t.Errorf("%s: response messages = %v, want 24", side.reporter, got)
		}
		if got := sumBy(samples(t, side.g, istiometrics.RequestDuration), "reporter")[side.reporter]; got != 24 {
			t.Errorf("%s: duration observations = %v, want 24", side.reporter, got)
		}
		for _, s := range samples(t, side.g, istiometrics.RequestBytes) {
			if s.labels["grpc_response_status"] == "0" && len(s.buckets) != len(istiometrics.BytesBuckets) {
				t.Errorf("%s: %d request byte buckets, want Envoy's %d", side.reporter, len(s.buckets), len(istiometrics.BytesBuckets))
			}
		}
		// Both sides learned the other through the exchange.
		for _, s := range reqs {
			if s.labels["source_workload"] != "frontend-v1" || s.labels["destination_workload"] != "echo-v2" {
				t.Errorf("%s: workloads %q -> %q, want frontend-v1 -> echo-v2", side.reporter, s.labels["source_workload"], s.labels["destination_workload"])
			}
		}
	}
}

// TestLabelsGolden pins the label set of one successful unary call on each
// side: what an Envoy sidecar pair reports for the same gRPC call without
// mutual TLS (principals unknown, connection_security_policy unknown at the
// source and none at the destination).
func TestLabelsGolden(t *testing.T) {
	a := startApps(t, true)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := a.unary(ctx, "hello"); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, side := range []prometheus.Gatherer{a.consumerMetrics.Registry(), a.providerMetrics.Registry()} {
		ss := samples(t, side, istiometrics.RequestsTotal)
		if len(ss) != 1 {
			t.Fatalf("%d series after one call, want 1", len(ss))
		}
		names := istiometrics.LabelNames()
		sorted := slices.Sorted(slices.Values(names))
		if len(ss[0].labels) != len(names) {
			t.Errorf("%d labels, want %d", len(ss[0].labels), len(names))
		}
		for _, n := range sorted {
			fmt.Fprintf(&b, "%s=%s\n", n, ss[0].labels[n])
		}
		b.WriteString("\n")
	}
	checkGolden(t, "unary_labels.golden", b.String())
}

// checkGolden compares got with testdata/name, which -update rewrites.
func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	golden := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("labels differ from %s (run with -update after checking):\ngot:\n%s\nwant:\n%s", golden, got, want)
	}
}

// TestServerWithoutExchange: a caller that sends no exchange headers is
// an unknown source, and the server sends no headers back.
func TestServerWithoutExchange(t *testing.T) {
	m, err := istiometrics.New(istiometrics.WithWorkload(providerWorkload))
	if err != nil {
		t.Fatal(err)
	}
	chain, err := filter.NewServerChain(m.ServerFilter(0))
	if err != nil {
		t.Fatal(err)
	}
	run := chain.Unary(func(context.Context, *call.Info, any) (any, error) { return nil, call.Errorf(call.Unavailable, "down") })
	if _, err := run(context.Background(), &call.Info{Service: "test.Echo", Method: "Echo"}, nil); call.CodeOf(err) != call.Unavailable {
		t.Fatalf("err = %v", err)
	}
	ss := samples(t, m.Registry(), istiometrics.RequestsTotal)
	if len(ss) != 1 || ss[0].value != 1 {
		t.Fatalf("samples = %+v", ss)
	}
	l := ss[0].labels
	if l["source_workload"] != "unknown" || l["source_app"] != "unknown" || l["destination_workload"] != "echo-v2" ||
		l["grpc_response_status"] != "14" || l["reporter"] != "destination" || l["connection_security_policy"] != "none" {
		t.Errorf("labels = %v", l)
	}
}

// TestMutualTLSLabels: with WithMutualTLS, principals are the workloads'
// SPIFFE IDs and the destination reports mutual_tls.
func TestMutualTLSLabels(t *testing.T) {
	m, err := istiometrics.New(istiometrics.WithWorkload(providerWorkload), istiometrics.WithMutualTLS(true), istiometrics.WithServiceName("echo-svc"))
	if err != nil {
		t.Fatal(err)
	}
	chain, _ := filter.NewServerChain(m.ServerFilter(0))
	run := chain.Unary(func(context.Context, *call.Info, any) (any, error) { return nil, nil })
	md, _ := consumerWorkload.Encode()
	info := &call.Info{Service: "test.Echo", Method: "Echo", Attachments: call.Attachments{peer.HeaderMetadata: md}}
	if _, err := run(context.Background(), info, nil); err != nil {
		t.Fatal(err)
	}
	l := samples(t, m.Registry(), istiometrics.RequestsTotal)[0].labels
	want := map[string]string{
		"source_principal":              "spiffe://cluster.local/ns/shop/sa/frontend",
		"destination_principal":         "spiffe://cluster.local/ns/shop/sa/echo",
		"connection_security_policy":    "mutual_tls",
		"destination_service_name":      "echo-svc",
		"destination_service":           "echo-svc.shop.svc.cluster.local",
		"destination_service_namespace": "shop",
		"source_workload":               "frontend-v1",
	}
	for k, v := range want {
		if l[k] != v {
			t.Errorf("%s = %q, want %q", k, l[k], v)
		}
	}
}

func TestNewRejectsASecondRegistration(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := istiometrics.New(istiometrics.WithRegisterer(reg), istiometrics.WithWorkload(providerWorkload)); err != nil {
		t.Fatal(err)
	}
	_, err := istiometrics.New(istiometrics.WithRegisterer(reg), istiometrics.WithWorkload(providerWorkload))
	if err == nil || !strings.Contains(err.Error(), "one Metrics per registry") {
		t.Errorf("second New on one registry: %v", err)
	}
}
