package echotest_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/stats/opentelemetry"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/shoalmesh/shoal/observability/internal/echotest"
	"github.com/shoalmesh/shoal/sdk/registry"
	"github.com/shoalmesh/shoal/sdk/registry/file"
)

// BenchmarkGRPCGoCall is BenchmarkRemoteCall's call made by a grpc-go
// client (the Triple provider speaks gRPC), for comparison: without
// instrumentation, and with grpc-go's OpenTelemetry plugin
// (google.golang.org/grpc/stats/opentelemetry) recording its default
// per-call and per-attempt metrics into an OpenTelemetry SDK meter
// provider (a manual reader: recording costs the same whatever reads it).
// grpc-go's metrics carry the method and target, not Istio's peer labels.
func BenchmarkGRPCGoCall(b *testing.B) {
	reg := filepath.Join(b.TempDir(), "registry.yaml")
	defer startProviderProcess(b, reg)()
	addr := providerAddress(b, reg)
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	b.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	for _, v := range []struct {
		name string
		opts []grpc.DialOption
	}{
		{"off", nil},
		{"otel", []grpc.DialOption{opentelemetry.DialOption(opentelemetry.Options{
			MetricsOptions: opentelemetry.MetricsOptions{MeterProvider: mp},
		})}},
	} {
		b.Run(v.name, func(b *testing.B) {
			cc, err := grpc.NewClient(addr, append(v.opts, grpc.WithTransportCredentials(insecure.NewCredentials()))...)
			if err != nil {
				b.Fatal(err)
			}
			defer func() { _ = cc.Close() }()
			ctx := context.Background()
			req, resp := wrapperspb.String("hello"), new(wrapperspb.StringValue)
			if err := cc.Invoke(ctx, "/test.Echo/Echo", req, resp); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			cpu0 := processCPU(b)
			for b.Loop() {
				if err := cc.Invoke(ctx, "/test.Echo/Echo", req, resp); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(processCPU(b)-cpu0)/float64(b.N), "cpu-ns/op")
		})
	}
}

// providerAddress reads the echo provider's address from the file registry.
func providerAddress(b *testing.B, path string) string {
	b.Helper()
	r, err := file.New(path)
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = r.Close() }()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	w, err := r.Watch(ctx, registry.Key{Interface: echotest.Service})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = w.Close() }()
	snap, err := w.Next(ctx)
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range snap.Clusters() {
		for _, ep := range c.Endpoints() {
			return ep.Address
		}
	}
	b.Fatalf("no echo provider in %s", path)
	return ""
}
