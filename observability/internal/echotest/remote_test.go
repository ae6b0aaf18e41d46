package echotest_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.uber.org/goleak"

	"github.com/shoalmesh/shoal/observability/internal/echotest"
	"github.com/shoalmesh/shoal/observability/istiometrics"
	"github.com/shoalmesh/shoal/observability/peer"
	"github.com/shoalmesh/shoal/observability/tracing"
	"github.com/shoalmesh/shoal/triple"
)

// providerEnv makes the test binary run only the echo provider (with the
// metrics and tracing server filters), registered in the file registry the
// variable names: the provider process of BenchmarkRemoteCall.
const providerEnv = "ECHOTEST_PROVIDER_REGISTRY"

func TestMain(m *testing.M) {
	if reg := os.Getenv(providerEnv); reg != "" {
		os.Exit(runProviderProcess(reg))
	}
	goleak.VerifyTestMain(m)
}

var workload = peer.Workload{Name: "w-0", Namespace: "shop", WorkloadName: "w", ClusterID: "Kubernetes", ServiceAccount: "w", InstanceIP: "10.0.0.5", Labels: map[string]string{"app": "w", "version": "v1"}}

func runProviderProcess(reg string) int {
	m, err := istiometrics.New(istiometrics.WithWorkload(workload))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(tracetest.NewNoopExporter()))
	p, err := echotest.StartProvider(echotest.FileRegistry(reg), tracing.New(tracing.WithTracerProvider(tp)).ServerFilter(5), m.ServerFilter(10))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin) // until the benchmark closes stdin
	_ = p.Stop(context.Background())
	return 0
}

// BenchmarkRemoteCall measures the consumer process alone: the provider
// (metrics and tracing server filters on) runs in a child process, so the
// allocations and the CPU time per call (cpu-ns/op) are the client
// side's only: observability off, Istio metrics on, tracing on sampling
// 1 % and 100 % of calls (spans to a no-op exporter), and metrics with
// tracing at 1 %.
func BenchmarkRemoteCall(b *testing.B) {
	reg := filepath.Join(b.TempDir(), "registry.yaml")
	defer startProviderProcess(b, reg)()
	m, err := istiometrics.New(istiometrics.WithWorkload(workload))
	if err != nil {
		b.Fatal(err)
	}
	traced := func(ratio float64) []triple.ClientOption {
		tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(tracetest.NewNoopExporter()),
			sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio))))
		b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
		return tracing.New(tracing.WithTracerProvider(tp)).ClientOptions()
	}
	for _, v := range []struct {
		name string
		opts []triple.ClientOption
	}{
		{"off", nil},
		{"metrics", m.ClientOptions()},
		{"tracing=1%", traced(0.01)},
		{"tracing=100%", traced(1)},
		{"metrics+tracing=1%", append(m.ClientOptions(), traced(0.01)...)},
	} {
		b.Run(v.name, func(b *testing.B) {
			client := echotest.StartConsumer(b, echotest.FileRegistry(reg), v.opts...)
			ctx := context.Background()
			b.ReportAllocs()
			cpu0 := processCPU(b)
			for b.Loop() {
				if err := echotest.Unary(ctx, client, "hello"); err != nil {
					b.Fatal(err)
				}
			}
			// The consumer process's CPU time per call: what the client
			// side costs, without the provider's share of the round trip.
			b.ReportMetric(float64(processCPU(b)-cpu0)/float64(b.N), "cpu-ns/op")
		})
	}
}

// startProviderProcess runs the echo provider (metrics and tracing server
// filters on) in a child process registered in the file registry at reg,
// and returns once it serves; the returned function stops it.
func startProviderProcess(b *testing.B, reg string) (stop func()) {
	b.Helper()
	cmd := exec.CommandContext(context.Background(), os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), providerEnv+"="+reg)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	stop = func() { _ = stdin.Close(); _ = cmd.Wait() }
	if line, err := bufio.NewReader(stdout).ReadString('\n'); err != nil || line != "ready\n" {
		stop()
		b.Fatalf("provider process: %q, %v", line, err)
	}
	return stop
}

// processCPU is the CPU time (user + system) this process used so far, in ns.
func processCPU(b *testing.B) int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
