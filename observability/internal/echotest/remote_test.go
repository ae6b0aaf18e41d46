package echotest_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.uber.org/goleak"

	"github.com/shoalmesh/shoal/observability/internal/echotest"
	"github.com/shoalmesh/shoal/observability/istiometrics"
	"github.com/shoalmesh/shoal/observability/peer"
	"github.com/shoalmesh/shoal/observability/tracing"
	"github.com/shoalmesh/shoal/sdk/filter"
	"github.com/shoalmesh/shoal/sdk/tri"
	"github.com/shoalmesh/shoal/triple"
)

// providerEnv makes the test binary run only the echo provider (with the
// metrics and tracing server filters), registered in the file registry the
// variable names: the provider process of BenchmarkRemoteCall.
const providerEnv = "ECHOTEST_PROVIDER_REGISTRY"

// plainProviderEnv, set to 1 beside providerEnv, runs the provider
// without server filters: it then does the same work whether the caller
// sends exchange headers or not.
const plainProviderEnv = "ECHOTEST_PROVIDER_PLAIN"

func TestMain(m *testing.M) {
	if reg := os.Getenv(providerEnv); reg != "" {
		os.Exit(runProviderProcess(reg, os.Getenv(plainProviderEnv) == "1"))
	}
	goleak.VerifyTestMain(m)
}

var workload = peer.Workload{Name: "w-0", Namespace: "shop", WorkloadName: "w", ClusterID: "Kubernetes", ServiceAccount: "w", InstanceIP: "10.0.0.5", Labels: map[string]string{"app": "w", "version": "v1"}}

func runProviderProcess(reg string, plain bool) int {
	m, err := istiometrics.New(istiometrics.WithWorkload(workload))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(tracetest.NewNoopExporter()))
	filters := []filter.Server{tracing.New(tracing.WithTracerProvider(tp)).ServerFilter(5), m.ServerFilter(10)}
	if plain {
		filters = nil
	}
	p, err := echotest.StartProvider(echotest.FileRegistry(reg), filters...)
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
	return startProvider(b, reg, false)
}

// startProvider is startProviderProcess, without server filters if plain.
func startProvider(b *testing.B, reg string, plain bool) (stop func()) {
	b.Helper()
	cmd := exec.CommandContext(context.Background(), os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), providerEnv+"="+reg)
	if plain {
		cmd.Env = append(cmd.Env, plainProviderEnv+"=1")
	}
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

// BenchmarkRemoteCallMetricsCost is the client side's cost of the metrics
// measured against drifting machine load: four consumers of the same
// provider process (none, a no-op interceptor, the client metrics, and the
// no-op interceptor sending the metrics' exchange headers) make their calls
// in blocks of 100, one block each per round, a different one first each
// round, so all see the same load. It reports each one's CPU ns per call
// (this process only), the metrics' difference to none as a ratio of
// totals and as the median of the per-round differences, and the same
// median for the headers alone. With provider=filters the provider runs
// the metrics and tracing server filters, so it answers a caller that
// sends exchange headers with its own; with provider=plain it runs none:
// it only decodes the two extra request headers into the call's
// attachments, and answers every caller alike.
func BenchmarkRemoteCallMetricsCost(b *testing.B) {
	for _, plain := range []bool{false, true} {
		name := "provider=filters"
		if plain {
			name = "provider=plain"
		}
		b.Run(name, func(b *testing.B) { metricsCost(b, plain) })
	}
}

func metricsCost(b *testing.B, plain bool) {
	reg := filepath.Join(b.TempDir(), "registry.yaml")
	defer startProvider(b, reg, plain)()
	m, err := istiometrics.New(istiometrics.WithWorkload(workload))
	if err != nil {
		b.Fatal(err)
	}
	noop := triple.WithUnaryClientInterceptors(func(ctx context.Context, method string, req, reply any, invoker triple.UnaryInvoker, opts ...triple.CallOption) error {
		return invoker(ctx, method, req, reply, opts...)
	})
	// The exchange headers the metrics send, sent by the no-op
	// interceptor: what the two extra request headers cost this process
	// (HPACK, and the provider's decoding them while the caller waits),
	// without the metrics' own work.
	xh := m.ExchangeHeaders()
	headers := triple.RequestHeaders(triple.Pairs(peer.HeaderMetadata, xh[peer.HeaderMetadata], peer.HeaderID, xh[peer.HeaderID]))
	headersOnly := triple.WithUnaryClientInterceptors(func(ctx context.Context, method string, req, reply any, invoker triple.UnaryInvoker, opts ...triple.CallOption) error {
		return invoker(ctx, method, req, reply, append(opts[:len(opts):len(opts)], headers)...)
	})
	// Off, an interceptor that does nothing (what any interceptor costs
	// in Triple), the metrics, and the no-op interceptor sending the
	// metrics' exchange headers.
	clients := [4]*tri.Client{
		echotest.StartConsumer(b, echotest.FileRegistry(reg)),
		echotest.StartConsumer(b, echotest.FileRegistry(reg), noop),
		echotest.StartConsumer(b, echotest.FileRegistry(reg), m.ClientOptions()...),
		echotest.StartConsumer(b, echotest.FileRegistry(reg), headersOnly),
	}
	ctx := context.Background()
	for _, c := range clients { // connect all before measuring
		if err := echotest.Unary(ctx, c, "hello"); err != nil {
			b.Fatal(err)
		}
	}
	// A round is one block per consumer, each starting with a different
	// consumer in turn. Each round gives a difference per call; their
	// median (delta-median-cpu-ns/op) does not move with a burst of load
	// that hits a few blocks, which the ratio of totals does.
	const block = 100
	var cpu, calls [4]int64
	var deltas, headerDeltas []float64
	b.ResetTimer()
	for round := 0; calls[0]+calls[1]+calls[2]+calls[3] < int64(b.N); round++ {
		n := int(min(block, (int64(b.N)-calls[0]-calls[1]-calls[2]-calls[3]+3)/4))
		var roundCPU [4]int64
		for k := range clients {
			side := (round + k) % len(clients)
			t0 := processCPU(b)
			for range n {
				if err := echotest.Unary(ctx, clients[side], "hello"); err != nil {
					b.Fatal(err)
				}
			}
			roundCPU[side] = processCPU(b) - t0
			cpu[side] += roundCPU[side]
			calls[side] += int64(n)
		}
		deltas = append(deltas, float64(roundCPU[2]-roundCPU[0])/float64(n))
		headerDeltas = append(headerDeltas, float64(roundCPU[3]-roundCPU[0])/float64(n))
	}
	if calls[2] == 0 {
		return // too few calls to compare
	}
	per := func(i int) float64 { return float64(cpu[i]) / float64(calls[i]) }
	b.ReportMetric(per(0), "off-cpu-ns/op")
	b.ReportMetric(per(1), "noop-cpu-ns/op")
	b.ReportMetric(per(2), "metrics-cpu-ns/op")
	b.ReportMetric(per(3), "headers-cpu-ns/op")
	b.ReportMetric(per(2)-per(0), "delta-cpu-ns/op")
	median := func(d []float64) float64 { slices.Sort(d); return d[len(d)/2] }
	b.ReportMetric(median(deltas), "delta-median-cpu-ns/op")
	b.ReportMetric(median(headerDeltas), "headers-delta-median-cpu-ns/op")
}
