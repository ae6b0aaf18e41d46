package interop

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shoalmesh/shoal/interop/peer/grpcgo"
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

// h2specAllowed lists the h2spec cases a Shoal server may fail, each with
// the RFC 9113 reason it does not apply. Empty: the server passes every
// case, strict ones included. A case added here needs its reason; a case
// listed here that passes is reported, so that the list stays true.
var h2specAllowed = map[string]string{}

// h2specResult is one h2spec case, as its JUnit report gives it.
type h2specResult struct {
	id, desc, outcome string // outcome: "passed", "failed" or "skipped"
	detail            string
}

// runH2Spec runs h2spec (strict: every case) against addr and returns
// each case's result, keyed "http2/5.1/3" (section and number, as
// h2spec's own output numbers them).
func runH2Spec(t *testing.T, h2spec, addr string, timeoutSec int) []h2specResult {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	report := filepath.Join(t.TempDir(), "h2spec.xml")
	// h2spec exits 1 when a case fails: the report says which.
	out, err := exec.Command(h2spec, "-S", "-h", host, "-p", port, "--timeout", fmt.Sprint(timeoutSec), "-j", report).CombinedOutput()
	raw, rerr := os.ReadFile(report)
	if rerr != nil {
		t.Fatalf("h2spec wrote no report (%v; exit: %v):\n%s", rerr, err, out)
	}
	var doc struct {
		Suites []struct {
			Package string `xml:"package,attr"`
			Cases   []struct {
				Desc    string `xml:"classname,attr"`
				Failure *struct {
					Text string `xml:",innerxml"`
				} `xml:"failure"`
				Error *struct {
					Text string `xml:",innerxml"`
				} `xml:"error"`
				Skipped *struct{} `xml:"skipped"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("h2spec report: %v", err)
	}
	var results []h2specResult
	for _, s := range doc.Suites {
		for i, c := range s.Cases {
			r := h2specResult{id: fmt.Sprintf("%s/%d", s.Package, i+1), desc: c.Desc, outcome: "passed"}
			switch {
			case c.Failure != nil:
				r.outcome, r.detail = "failed", c.Failure.Text
			case c.Error != nil:
				r.outcome, r.detail = "failed", c.Error.Text
			case c.Skipped != nil:
				r.outcome = "skipped"
			}
			results = append(results, r)
		}
	}
	if len(results) == 0 {
		t.Fatalf("h2spec ran no case:\n%s", out)
	}
	return results
}

// h2specScore sums results up as h2spec does.
func h2specScore(results []h2specResult) string {
	n := map[string]int{}
	for _, r := range results {
		n[r.outcome]++
	}
	return fmt.Sprintf("%d tests, %d passed, %d skipped, %d failed", len(results), n["passed"], n["skipped"], n["failed"])
}

// TestH2Spec runs h2spec v2.2.1 (tools/h2spec), an HTTP/2 conformance
// tester the project did not write, against a Shoal server: every case,
// strict ones included, must pass but those in h2specAllowed. A plain
// grpc-go server is run too, as a reference: its score is logged, not
// checked (without -short).
func TestH2Spec(t *testing.T) {
	h2spec := tool(t, "h2spec")
	results := runH2Spec(t, h2spec, startShoal(t), 5)
	t.Logf("h2spec against Shoal: %s", h2specScore(results))
	for _, r := range results {
		reason, allowed := h2specAllowed[r.id]
		switch {
		case r.outcome != "passed" && !allowed:
			t.Errorf("h2spec %s %s: %s\n%s", r.id, r.outcome, r.desc, strings.TrimSpace(r.detail))
		case r.outcome == "passed" && allowed:
			t.Errorf("h2spec %s passes: remove it from h2specAllowed (%s)", r.id, reason)
		}
	}
	if testing.Short() {
		return
	}
	addr, stop, err := grpcgo.Server{}.Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	// One second per case: grpc-go's failures are mostly timeouts.
	t.Logf("h2spec against grpc-go (reference, not checked): %s", h2specScore(runH2Spec(t, h2spec, addr, 1)))
}
