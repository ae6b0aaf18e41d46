package istiometrics_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/shoalmesh/shoal/observability/internal/echotest"
	"github.com/shoalmesh/shoal/observability/istiometrics"
	"github.com/shoalmesh/shoal/observability/peer"
	"github.com/shoalmesh/shoal/sdk/app"
	"github.com/shoalmesh/shoal/sdk/config"
	"github.com/shoalmesh/shoal/sdk/tri"
	"github.com/shoalmesh/shoal/triple"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func noEnv(string) (string, bool) { return "", false }

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
	regFile := config.Registry{Name: "local", Kind: "file", Address: filepath.Join(t.TempDir(), "registry.yaml")}
	pm, err := istiometrics.New(istiometrics.WithWorkload(providerWorkload))
	if err != nil {
		t.Fatal(err)
	}
	cm, err := istiometrics.New(istiometrics.WithWorkload(consumerWorkload))
	if err != nil {
		t.Fatal(err)
	}
	var serverMetrics, clientMetrics *istiometrics.Metrics
	if serverOn {
		serverMetrics = pm
	}
	if clientOn {
		clientMetrics = cm
	}
	provider, err := startProvider(regFile, serverMetrics)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = provider.Stop(context.Background()) })
	return &apps{consumerMetrics: cm, providerMetrics: pm, client: startConsumer(t, regFile, clientMetrics)}
}

// startProvider starts the echo provider, with the server filter of m
// unless m is nil, registered in regFile.
func startProvider(regFile config.Registry, m *istiometrics.Metrics) (*app.App, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	pcfg, err := config.Load(config.WithoutFile(), config.WithEnv(noEnv), config.WithRegistry(regFile),
		config.WithApplicationName("echo"),
		config.WithProtocol(config.Protocol{Host: "127.0.0.1", Port: 0}),
		config.WithService(config.Service{Interface: echotest.Service}))
	if err != nil {
		return nil, err
	}
	servers := tri.NewServers([]tri.Export{{Desc: &echotest.Desc, Impl: echotest.Impl{}}}, triple.WithLogger(quiet))
	popts := []app.Option{app.WithServers(servers.Factory()), app.WithServing(servers.SetServing), app.WithLogger(quiet), app.WithDrainDelay(0)}
	if m != nil {
		popts = append(popts, app.WithServerFilters(m.ServerFilter(10)))
	}
	provider, err := app.New(pcfg, popts...)
	if err != nil {
		return nil, err
	}
	return provider, provider.Start(ctx)
}

// startConsumer starts a consumer of the echo service found in regFile,
// with the client options of m unless m is nil.
func startConsumer(t testing.TB, regFile config.Registry, m *istiometrics.Metrics) *tri.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var copts []triple.ClientOption
	if m != nil {
		copts = m.ClientOptions()
	}
	ccfg, err := config.Load(config.WithoutFile(), config.WithEnv(noEnv), config.WithRegistry(regFile),
		config.WithApplicationName("frontend"),
		config.WithReference(config.Reference{Name: "echo", Interface: echotest.Service}))
	if err != nil {
		t.Fatal(err)
	}
	consumer, err := app.New(ccfg, app.WithTransport(tri.NewTransport(copts...)), app.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	if err := consumer.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = consumer.Stop(context.Background()) })
	ref, err := consumer.Reference("echo")
	if err != nil {
		t.Fatal(err)
	}
	if err := ref.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	return tri.NewClient(ref)
}

func (a *apps) unary(ctx context.Context, msg string) error {
	out := new(wrapperspb.StringValue)
	if err := a.client.Invoke(ctx, "/test.Echo/Echo", wrapperspb.String(msg), out); err != nil {
		return err
	}
	if out.GetValue() != msg {
		return fmt.Errorf("echo answered %q to %q", out.GetValue(), msg)
	}
	return nil
}

// chat sends n messages on one bidi stream and reads the n answers.
func (a *apps) chat(ctx context.Context, n int) error {
	st, err := a.client.NewStream(ctx, &echotest.Desc.Streams[0], "/test.Echo/Chat")
	if err != nil {
		return err
	}
	for i := range n {
		if err := st.SendMsg(wrapperspb.String(fmt.Sprint(i))); err != nil {
			return err
		}
		if err := st.RecvMsg(new(wrapperspb.StringValue)); err != nil {
			return err
		}
	}
	if err := st.CloseSend(); err != nil {
		return err
	}
	if err := st.RecvMsg(new(wrapperspb.StringValue)); !errors.Is(err, io.EOF) {
		return fmt.Errorf("stream end: %v, want io.EOF", err)
	}
	return nil
}
