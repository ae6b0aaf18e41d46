// Package helloworld_test runs the helloworld sample's server and client as
// real processes, as a user would with go run.
package helloworld_test

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func build(t *testing.T, dir, pkg string) string {
	t.Helper()
	bin := filepath.Join(dir, filepath.Base(pkg))
	out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput()
	if err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, out)
	}
	return bin
}

// TestHelloworld starts the server, runs the client against it through the
// file registry only, then stops the server with SIGTERM.
func TestHelloworld(t *testing.T) {
	dir := t.TempDir()
	server, client := build(t, dir, "./server"), build(t, dir, "./client")
	// Both processes share a private registry file and the server takes any
	// free port, so the test never collides with a sample a user runs.
	env := append(os.Environ(), "TMPDIR="+dir, "SHOAL_PROTOCOLS_0_PORT=0", "SHOAL_PROTOCOLS_0_HOST=127.0.0.1", "SHOAL_LOGGING_LEVEL=warn")

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	srv := exec.CommandContext(ctx, server)
	srv.Env = env
	var srvOut bytes.Buffer
	srv.Stdout, srv.Stderr = &srvOut, &srvOut
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			_ = srv.Process.Kill()
			_ = srv.Wait()
		}
	}()

	cli := exec.CommandContext(ctx, client, "-name", "Ada", "-n", "3", "-wait", "20s")
	cli.Env = env
	out, err := cli.CombinedOutput()
	if err != nil {
		t.Fatalf("client: %v\n%s\nserver:\n%s", err, out, srvOut.String())
	}
	var unary, stream int
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "Hello, Ada (served by helloworld-server@"):
			unary++
		case strings.HasPrefix(line, "Hello, Ada ("):
			stream++
		}
	}
	if unary != 3 || stream != 3 {
		t.Fatalf("client printed %d unary and %d stream greetings, want 3 and 3:\n%s", unary, stream, out)
	}

	if err := srv.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Wait() }()
	select {
	case err := <-done:
		stopped = true
		if err != nil {
			t.Fatalf("server exited with %v after SIGTERM:\n%s", err, srvOut.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("server still running 20s after SIGTERM:\n%s", srvOut.String())
	}
}
