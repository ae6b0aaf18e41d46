package interop

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shoalmesh/shoal/interop/peer/shoal"
	"github.com/shoalmesh/shoal/triple"
)

// tool finds a command-line tool: the pinned build in .cache/bin (make deps),
// then PATH. Missing tools skip under -short and fail otherwise.
func tool(t *testing.T, name string) string {
	t.Helper()
	if p, err := filepath.Abs(filepath.Join("..", ".cache", "bin", name)); err == nil {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	if testing.Short() {
		t.Skipf("%s is not installed; make deps installs it", name)
	}
	t.Fatalf("%s is not installed; run make deps", name)
	return ""
}

// serveLoopback serves srv on a loopback port until the test ends and
// returns its address.
func serveLoopback(t *testing.T, srv *triple.Server) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(lis)
	}()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		<-done
	})
	return lis.Addr().String()
}

func startShoal(t *testing.T) string {
	t.Helper()
	addr, stop, err := shoal.Server{}.Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return addr
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestGRPCurl lists, describes (everything, then one service) and calls a
// Shoal server with grpcurl v1.9.3 through server reflection, as a user
// debugging a service would.
func TestGRPCurl(t *testing.T) {
	grpcurl := tool(t, "grpcurl")
	addr := startShoal(t)

	list := run(t, grpcurl, "-plaintext", addr, "list")
	for _, svc := range []string{"greet.GreetService", "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection"} {
		if !strings.Contains(list, svc) {
			t.Errorf("grpcurl list does not show %s:\n%s", svc, list)
		}
	}
	// describe with no arguments resolves every listed service; one that
	// does not resolve makes grpcurl exit 1.
	all := run(t, grpcurl, "-plaintext", addr, "describe")
	for _, svc := range []string{"greet.GreetService", "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"} {
		if !strings.Contains(all, svc+" is a service:") {
			t.Errorf("grpcurl describe does not describe %s:\n%s", svc, all)
		}
	}
	desc := run(t, grpcurl, "-plaintext", addr, "describe", "greet.GreetService")
	if !strings.Contains(desc, "rpc GreetBidiStream ( stream .greet.GreetRequest ) returns ( stream .greet.GreetResponse );") {
		t.Errorf("grpcurl describe:\n%s", desc)
	}
	out := run(t, grpcurl, "-plaintext", "-H", "x-tenant: curl", "-d", `{"name":"grpcurl"}`, addr, "greet.GreetService/Greet")
	var resp struct {
		Greeting string            `json:"greeting"`
		Seen     map[string]string `json:"seen"`
	}
	if err := json.Unmarshal([]byte(out), &resp); err != nil {
		t.Fatalf("grpcurl output %q: %v", out, err)
	}
	if resp.Greeting != "Hello, grpcurl" || resp.Seen["x-tenant"] != "curl" {
		t.Errorf("grpcurl call: %+v", resp)
	}
	// A group and version travel as headers, as Dubbo's own clients send them.
	out = run(t, grpcurl, "-plaintext", "-rpc-header", "tri-service-group: g1", "-rpc-header", "tri-service-version: 2.0.0", "-d", `{"name":"v2"}`, addr, "greet.GreetService/Greet")
	if !strings.Contains(out, `"group": "g1"`) {
		t.Errorf("grpcurl with group: %s", out)
	}
	health := run(t, grpcurl, "-plaintext", "-d", `{"service":"greet.GreetService"}`, addr, "grpc.health.v1.Health/Check")
	if !strings.Contains(health, "SERVING") {
		t.Errorf("health: %s", health)
	}
}

// TestCurlJSON calls a Shoal server with curl over HTTP/1.1 JSON.
func TestCurlJSON(t *testing.T) {
	curl := tool(t, "curl")
	addr := startShoal(t)
	out := run(t, curl, "-sS", "--http1.1", "-H", "Content-Type: application/json", "-d", `{"name":"curl"}`,
		"http://"+addr+"/greet.GreetService/Greet")
	if !strings.Contains(out, `"greeting":"Hello, curl"`) {
		t.Errorf("curl: %s", out)
	}
	out = run(t, curl, "-sS", "--http1.1", "-o", "/dev/null", "-w", "%{http_code}", "-H", "Content-Type: application/json",
		"-d", `{"name":"x"}`, "http://"+addr+"/greet.Nope/Greet")
	if out != "404" {
		t.Errorf("unknown service over curl: HTTP %s, want 404", out)
	}
}
