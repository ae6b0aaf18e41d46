package metricse2e_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/shoalmesh/shoal/interop/internal/e2etest"

	"go.uber.org/goleak"

	"github.com/shoalmesh/shoal/localmesh"
	"github.com/shoalmesh/shoal/observability/admin"
	"github.com/shoalmesh/shoal/observability/istiometrics"
	"github.com/shoalmesh/shoal/observability/peer"
	"github.com/shoalmesh/shoal/observability/promtest"
	"github.com/shoalmesh/shoal/proto/greet"
	"github.com/shoalmesh/shoal/proto/greet/greettriple"
	registryistio "github.com/shoalmesh/shoal/registry-istio"
	"github.com/shoalmesh/shoal/registry-istio/bootstrap"
	routermesh "github.com/shoalmesh/shoal/router-mesh"
	"github.com/shoalmesh/shoal/sdk/consumer"
	"github.com/shoalmesh/shoal/sdk/mesh"
	"github.com/shoalmesh/shoal/sdk/registry"
	"github.com/shoalmesh/shoal/sdk/router"
	"github.com/shoalmesh/shoal/sdk/tri"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(e2etest.IgnoreControlPlane...); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

const (
	ns          = "default"
	svc         = "greeter"
	host        = svc + "." + ns + ".svc.cluster.local"
	port        = 20000
	metricsPort = 15020 // the providers' admin endpoint, Istio's merged-metrics port
	target      = "xds:///" + host + ":20000"
	calls       = 1000
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// rules: the Service over the greeter Pods, subsets v1 and v2, and a
// 70/30 split between them.
const rules = e2etest.GreeterRules + `---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: greeter, namespace: default}
spec:
  hosts: [greeter.default.svc.cluster.local]
  http:
  - route:
    - {destination: {host: greeter.default.svc.cluster.local, subset: v1}, weight: 70}
    - {destination: {host: greeter.default.svc.cluster.local, subset: v2}, weight: 30}
`

// consumerWorkload is the identity of the test's consumer, as the
// injector's environment would describe a Pod.
var consumerWorkload = peer.Workload{
	Name: "e2e-consumer-7d9f8-xk2lp", Namespace: ns, WorkloadName: "e2e-consumer", ClusterID: "Kubernetes",
	ServiceAccount: "e2e-consumer", InstanceIP: "127.0.0.1", Labels: map[string]string{"app": "e2e-consumer", "version": "v1"},
}

// TestIstioMetricsThroughSplit: 1,000 calls through a 70/30 VirtualService
// split, and Prometheus's sum by destination_version of
// istio_requests_total equals, on the source side and on the destination
// side, the number of calls each version answered (from the response's
// served_by, counted by the test); every series carries the labels an
// Envoy sidecar pair reports, destination_service being the Service.
func TestIstioMetricsThroughSplit(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real control plane, containers and Prometheus; run without -short (make test)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()

	m, eng, image := e2etest.StartMesh(ctx, t, t.Cleanup, quiet)
	if err := m.Apply(ctx, rules); err != nil {
		t.Fatal(err)
	}
	targets := map[string]string{} // Prometheus target -> what it is
	for _, v := range []string{"v1", "v2"} {
		w, err := m.RunWorkload(ctx, eng, localmesh.WorkloadSpec{
			Name:   "greeter-" + v,
			Image:  image,
			Labels: map[string]string{"app": svc, "version": v},
			Env: map[string]string{
				"VERSION": v, "PORT": fmt.Sprint(port),
				"ISTIO_METRICS_PORT": fmt.Sprint(metricsPort), "ISTIO_META_WORKLOAD_NAME": "greeter-" + v,
			},
			ReadyPort: port,
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = w.Stop(context.Background(), 5*time.Second) })
		targets[w.Addr(metricsPort)] = w.Name()
	}

	// The consumer: istiod's routes applied in-process, Istio's metrics
	// on its Triple connections, its admin endpoint on loopback.
	cm, err := istiometrics.New(istiometrics.WithWorkload(consumerWorkload))
	if err != nil {
		t.Fatal(err)
	}
	adm, err := admin.New(admin.WithAddress("127.0.0.1:0"), admin.WithGatherer(cm.Registry()))
	if err != nil {
		t.Fatal(err)
	}
	if err := adm.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = adm.Stop(context.Background()) })
	targets[adm.Addr().String()] = "consumer"

	reg, err := registryistio.New(&bootstrap.Config{ServerURI: m.IstiodAddr(0), Node: bootstrap.Identity{
		PodName: consumerWorkload.Name, Namespace: ns, IPs: []string{"127.0.0.1"},
	}.Node()}, registryistio.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = reg.Close() })
	awaitSplit(ctx, t, reg)
	engine := router.BuildEngine(routermesh.Builder(routermesh.WithLogger(quiet)), router.EngineOptions{Service: target, Logger: quiet})
	// Metrics.Transport: destination_service is the Service of the xDS
	// cluster each endpoint came from.
	ref, err := consumer.New(registry.Key{Interface: target}, reg, cm.Transport(),
		consumer.WithEngine(engine), consumer.WithLogger(quiet), consumer.WithWaitForReady(), consumer.WithTimeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ref.Close() })
	client := greettriple.NewGreetServiceClient(tri.NewClient(ref))

	// Every call the consumer makes is one of these; each must succeed.
	served := map[string]float64{}
	for i := range calls {
		resp, err := client.Greet(ctx, &greet.GreetRequest{Name: fmt.Sprint("call ", i)})
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		_, v, _ := strings.Cut(resp.GetServedBy(), "/")
		served[v]++
	}
	t.Logf("served by version: %v", served)
	if math.Abs(served["v1"]/calls-0.70) > 0.06 {
		t.Errorf("v1 answered %v of %d calls; the 70/30 split wants 700 +/- 60", served["v1"], calls)
	}

	prom := promtest.Start(ctx, t, slicesOf(targets)...)
	queries := map[string]string{
		"source":      `sum by (destination_version) (istio_requests_total{reporter="source"})`,
		"destination": `sum by (destination_version) (istio_requests_total{reporter="destination"})`,
	}
	got := map[string]map[string]float64{}
	prom.Await(ctx, t, func(ctx context.Context) (bool, error) {
		for name, q := range queries {
			samples, err := prom.Query(ctx, q)
			if err != nil {
				return false, err
			}
			got[name] = promtest.ByLabel(samples, "destination_version")
		}
		return maps.Equal(got["source"], served) && maps.Equal(got["destination"], served), nil
	}, func() string {
		return fmt.Sprintf("source %v, destination %v; the test counted %v (targets %v)", got["source"], got["destination"], served, targets)
	})
	t.Logf("PromQL %s = %v", queries["source"], got["source"])
	t.Logf("PromQL %s = %v", queries["destination"], got["destination"])

	// Every series has the labels an Envoy sidecar pair without mutual TLS
	// reports for these calls (istiometrics' golden file has the same rows).
	series, err := prom.Query(ctx, `istio_requests_total`)
	if err != nil {
		t.Fatal(err)
	}
	if len(series) != 4 {
		t.Errorf("%d istio_requests_total series, want 4 (two reporters, two versions): %v", len(series), series)
	}
	for _, s := range series {
		got := maps.Clone(s.Labels)
		for _, l := range []string{"__name__", "job", "instance"} { // Prometheus's own
			delete(got, l)
		}
		if want := envoyLabels(got["reporter"], got["destination_version"]); !maps.Equal(got, want) {
			t.Errorf("series labels\n got %v\nwant %v", got, want)
		}
	}
}

// envoyLabels is what Envoy's stats filter reports for a successful call
// from the consumer to greeter's version v, plaintext, on reporter's side.
func envoyLabels(reporter, v string) map[string]string {
	policy := "unknown" // a client sidecar never reports the policy
	if reporter == "destination" {
		policy = "none"
	}
	return map[string]string{
		"reporter": reporter, "request_protocol": "grpc", "response_code": "200", "grpc_response_status": "0",
		"response_flags": "-", "connection_security_policy": policy,
		"source_workload": "e2e-consumer", "source_workload_namespace": ns, "source_app": "e2e-consumer",
		"source_version": "v1", "source_canonical_service": "e2e-consumer", "source_canonical_revision": "v1",
		"source_cluster": "Kubernetes", "source_principal": "unknown",
		"destination_workload": "greeter-" + v, "destination_workload_namespace": ns, "destination_app": svc,
		"destination_version": v, "destination_canonical_service": svc, "destination_canonical_revision": v,
		"destination_cluster": "Kubernetes", "destination_principal": "unknown",
		"destination_service": host, "destination_service_name": svc, "destination_service_namespace": ns,
	}
}

// awaitSplit waits until the registry serves the 70/30 split, so that the
// consumer created next routes by it from its first call.
func awaitSplit(ctx context.Context, t *testing.T, reg *registryistio.Registry) {
	t.Helper()
	w, err := reg.Watch(ctx, registry.Key{Interface: target})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = w.Close() }()
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		snap, err := w.Next(wctx)
		if err != nil {
			t.Fatalf("the 70/30 split with endpoints in both subsets never reached the consumer: %v", err)
		}
		if splitReady(snap) {
			return
		}
	}
}

// splitReady reports whether the snapshot routes 70/30 to v1/v2 and both
// subsets have an endpoint.
func splitReady(s *mesh.Snapshot) bool {
	rs := s.Routes()
	if len(rs) != 1 {
		return false
	}
	weights := map[string]uint32{}
	for _, d := range rs[0].Destinations {
		weights[d.Subset] = d.Weight
	}
	if weights["v1"] != 70 || weights["v2"] != 30 {
		return false
	}
	ready := map[string]bool{}
	for _, c := range s.Clusters() {
		if len(c.Endpoints()) > 0 {
			ready[c.Destination().Subset] = true
		}
	}
	return ready["v1"] && ready["v2"]
}

func slicesOf(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
