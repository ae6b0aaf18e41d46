package istiometrics_test

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

	"github.com/shoalmesh/shoal/observability/internal/echotest"
	"github.com/shoalmesh/shoal/observability/istiometrics"
	"github.com/shoalmesh/shoal/triple"
)

// providerEnv makes the test binary run only the echo provider (with the
// server filter), registered in the file registry the variable names: the
// provider process of BenchmarkRemoteCall.
const providerEnv = "ISTIOMETRICS_TEST_PROVIDER_REGISTRY"

func runProviderProcess(reg string) int {
	m, err := istiometrics.New(istiometrics.WithWorkload(providerWorkload))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	p, err := echotest.StartProvider(echotest.FileRegistry(reg), m.ServerFilter(10))
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
// (server filter on) runs in a child process, so the allocations and the
// CPU time per call (cpu-ns/op) are the client side's only, with its
// metrics off and on.
func BenchmarkRemoteCall(b *testing.B) {
	reg := filepath.Join(b.TempDir(), "registry.yaml")
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
	defer func() { _ = stdin.Close(); _ = cmd.Wait() }()
	if line, err := bufio.NewReader(stdout).ReadString('\n'); err != nil || line != "ready\n" {
		b.Fatalf("provider process: %q, %v", line, err)
	}
	regFile := echotest.FileRegistry(reg)
	for _, on := range []bool{false, true} {
		name := "client-metrics=off"
		var copts []triple.ClientOption
		if on {
			name = "client-metrics=on"
			m, err := istiometrics.New(istiometrics.WithWorkload(consumerWorkload))
			if err != nil {
				b.Fatal(err)
			}
			copts = m.ClientOptions()
		}
		b.Run(name, func(b *testing.B) {
			a := &apps{client: echotest.StartConsumer(b, regFile, copts...)}
			ctx := context.Background()
			b.ReportAllocs()
			cpu0 := processCPU(b)
			for b.Loop() {
				if err := a.unary(ctx, "hello"); err != nil {
					b.Fatal(err)
				}
			}
			// The consumer process's CPU time per call: what the client
			// side costs, without the provider's share of the round trip.
			b.ReportMetric(float64(processCPU(b)-cpu0)/float64(b.N), "cpu-ns/op")
		})
	}
}

// processCPU is the CPU time (user + system) this process used so far, in ns.
func processCPU(b *testing.B) int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
