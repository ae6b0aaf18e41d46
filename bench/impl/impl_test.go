package impl

import (
	"context"
	"fmt"
	"net"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// The TLS contenders read the test CA's files from EnvCertDir.
	dir, err := os.MkdirTemp("", "impl-certs")
	if err == nil {
		err = WriteTestCerts(dir)
	}
	if err == nil {
		err = os.Setenv(EnvCertDir, dir)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "impl: test certificates:", err)
		os.Exit(1)
	}
	goleak.VerifyTestMain(m, goleak.Cleanup(func(int) { _ = os.RemoveAll(dir) }))
}

// startServing runs serve on a loopback port until the test ends and
// returns the bound address.
func startServing(t *testing.T, serve func(ctx context.Context, addr string, ready func(string)) error) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	bound := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- serve(ctx, "127.0.0.1:0", func(a string) { bound <- a }) }()
	var addr string
	select {
	case addr = <-bound:
	case err := <-done:
		cancel()
		t.Fatalf("serve: %v", err)
	case <-time.After(10 * time.Second):
		cancel()
		t.Fatalf("server not ready after 10s (serve returned %v once stopped)", <-done)
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve after stop: %v", err)
		}
	})
	return addr
}

// TestEveryImplRoundTrips serves and calls every registered implementation
// over loopback and drives a short, bounded load through it.
func TestEveryImplRoundTrips(t *testing.T) {
	for _, name := range Names() {
		t.Run(name, func(t *testing.T) {
			im, err := Lookup(name)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			addr := startServing(t, im.Serve)
			c, err := im.Dial(addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			res, err := RunLoad(ctx, c, LoadConfig{Concurrency: 4, Duration: 200 * time.Millisecond, MaxCalls: 200, Payload: 1024})
			if err != nil {
				t.Fatal(err)
			}
			if res.Errors != 0 || len(res.Latencies) == 0 {
				t.Fatalf("load: %d errors (first: %v), %d successful calls", res.Errors, res.FirstErr, len(res.Latencies))
			}
			if len(res.Latencies) > 4*200 {
				t.Errorf("%d calls recorded, more than the 4x200 bound", len(res.Latencies))
			}
		})
	}
}

func TestLookupUnknown(t *testing.T) {
	if _, err := Lookup("carrier-pigeon"); err == nil {
		t.Fatal("Lookup of an unknown implementation succeeded")
	}
}

func TestRunLoadRejectsBadConfig(t *testing.T) {
	if _, err := RunLoad(context.Background(), nil, LoadConfig{}); err == nil {
		t.Fatal("RunLoad accepted a zero config")
	}
}

func TestRunLoadReportsFailures(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close() // nothing listens: every call fails
	im, _ := Lookup("grpc-go")
	c, err := im.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = RunLoad(context.Background(), c, LoadConfig{Concurrency: 1, Duration: 100 * time.Millisecond, MaxCalls: 3, CallTimeout: 50 * time.Millisecond})
	if err == nil {
		t.Fatal("RunLoad against a closed port reported no error")
	}
}

func TestStartCPUProfile(t *testing.T) {
	stop, err := StartCPUProfile("")
	if err != nil || stop() != nil {
		t.Fatalf("an empty path: %v", err)
	}
	path := t.TempDir() + "/cpu.pprof"
	if stop, err = StartCPUProfile(path); err != nil {
		t.Fatal(err)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Size() == 0 {
		t.Fatalf("profile %s: %v, %v bytes", path, err, fi)
	}
	if _, err := StartCPUProfile(t.TempDir() + "/no/such/dir/cpu.pprof"); err == nil {
		t.Fatal("StartCPUProfile into a missing directory succeeded")
	}
}
