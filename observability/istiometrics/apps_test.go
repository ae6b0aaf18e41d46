package istiometrics_test

import (
	"context"
	"testing"

	"github.com/shoalmesh/shoal/observability/internal/echotest"
	"github.com/shoalmesh/shoal/observability/istiometrics"
	"github.com/shoalmesh/shoal/observability/peer"
	"github.com/shoalmesh/shoal/sdk/filter"
	"github.com/shoalmesh/shoal/sdk/tri"
	"github.com/shoalmesh/shoal/triple"
)

// The workloads of the test's two applications, as the sidecar injector's
// environment would describe them.
var (
	consumerWorkload = peer.Workload{
		Name: "frontend-v1-5c7d9-abcde", Namespace: "shop", WorkloadName: "frontend-v1", ClusterID: "Kubernetes",
		ServiceAccount: "frontend", InstanceIP: "10.0.0.5", Labels: map[string]string{"app": "frontend", "version": "v1"},
	}
	providerWorkload = peer.Workload{
		Name: "echo-v2-6f8b4-fghij", Namespace: "shop", WorkloadName: "echo-v2", ClusterID: "Kubernetes",
		ServiceAccount: "echo", InstanceIP: "10.0.0.7", Labels: map[string]string{"app": "echo", "version": "v2"},
	}
)

type apps struct {
	consumerMetrics, providerMetrics *istiometrics.Metrics
	client                           *tri.Client
}

// startApps starts a provider with the server filter and a consumer with
// the client options, over loopback Triple and a file registry.
func startApps(t testing.TB, metricsOn bool) *apps { return startAppsWith(t, metricsOn, metricsOn) }

// startAppsWith turns the server filter and the client options on separately.
func startAppsWith(t testing.TB, serverOn, clientOn bool) *apps {
	t.Helper()
	reg := echotest.Registry(t)
	pm, err := istiometrics.New(istiometrics.WithWorkload(providerWorkload))
	if err != nil {
		t.Fatal(err)
	}
	cm, err := istiometrics.New(istiometrics.WithWorkload(consumerWorkload))
	if err != nil {
		t.Fatal(err)
	}
	var filters []filter.Server
	var copts []triple.ClientOption
	if serverOn {
		filters = append(filters, pm.ServerFilter(10))
	}
	if clientOn {
		copts = cm.ClientOptions()
	}
	echotest.StartProviderT(t, reg, filters...)
	return &apps{consumerMetrics: cm, providerMetrics: pm, client: echotest.StartConsumer(t, reg, copts...)}
}

func (a *apps) unary(ctx context.Context, msg string) error {
	return echotest.Unary(ctx, a.client, msg)
}

func (a *apps) chat(ctx context.Context, n int) error { return echotest.Chat(ctx, a.client, n) }
