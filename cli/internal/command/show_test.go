package command

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/shoalmesh/shoal/registry-istio/xdstest"
)

// The host greet.GreetService maps to under the default convention.
const showHost = "greet.greetservice.default.shoal.local"

// runShow runs `shoal show` with args and returns the exit code, stdout and
// stderr.
func runShow(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	return runShoal(t, "show", args...)
}

// runShoal runs the shoal subcommand cmd with args and no standard input,
// and returns the exit code, stdout and stderr.
func runShoal(t *testing.T, cmd string, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out, errOut bytes.Buffer
	code := Run(ctx, append([]string{cmd}, args...), strings.NewReader(""), &out, &errOut)
	return code, out.String(), errOut.String()
}

// noLeaks checks, after every other cleanup of t (the fake server's stop
// among them), that shoal show left no goroutine behind.
func noLeaks(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
}

// splitServer is an in-process fake of istiod (registry-istio's xdstest)
// serving greet.GreetService as a VirtualService would split it: 90 % to
// subset v1, 10 % to v2, with a timeout, retries and an injected delay, and
// a v2 endpoint that is not healthy.
func splitServer(t *testing.T) *xdstest.Server {
	srv := xdstest.NewServer(t)
	res := xdstest.Split(showHost, 50051,
		xdstest.Subset{Name: "v1", Weight: 90, Endpoints: []xdstest.Endpoint{{IP: "127.0.0.1", Port: 20001}}},
		xdstest.Subset{Name: "v2", Weight: 10, Endpoints: []xdstest.Endpoint{
			{IP: "127.0.0.2", Port: 20002},
			{IP: "127.0.0.3", Port: 20002, Health: xdstest.Unhealthy},
		}},
	)
	route := res.Routes[0].VirtualHosts[0].Routes[0]
	xdstest.WithTimeout(route, 3*time.Second)
	route.GetRoute().RetryPolicy = xdstest.RetryPolicy("unavailable", 2, time.Second)
	xdstest.WithFault(route, 50*time.Millisecond, 5, 0, 0)
	// Before it, calls with x-canary: true go to v2 only.
	canary := xdstest.WeightedRoute("canary", xdstest.HeaderMatch("/greet.GreetService/", map[string]string{"x-canary": "true"}),
		xdstest.WeightedCluster{Name: xdstest.ClusterName(showHost, "v2", 50051), Weight: 1})
	xdstest.PrependRoute(res, canary)
	srv.Set(res)
	return srv
}

func TestShowTable(t *testing.T) {
	noLeaks(t)
	srv := splitServer(t)
	code, out, errOut := runShow(t, "greet.GreetService", "--xds", srv.Address())
	if code != ExitOK {
		t.Fatalf("exit %d, stderr %s", code, errOut)
	}
	t.Logf("output:\n%s", out)
	for _, re := range []string{
		`(?m)^Host:\s+` + regexp.QuoteMeta(showHost+":50051") + `$`,
		`(?m)^istiod:\s+` + regexp.QuoteMeta(srv.Address()) + `$`,
		`(?m)^1\s+path prefix "/greet.GreetService/", header x-canary exact "true"\s+greet\.GreetService subset v2\s+1 \(100%\)\s+-\s+-\s+-$`,
		`(?m)^2\s+any\s+greet\.GreetService subset v1\s+90 \(90%\)\s+3s\s+2 x 1s on unavailable\s+delay 50ms 5%$`,
		`(?m)^\s+greet\.GreetService subset v2\s+10 \(10%\)\s*$`,
		`(?m)^v1\s+127\.0\.0\.1:20001\s+healthy\s+yes\b`,
		`(?m)^v2\s+127\.0\.0\.2:20002\s+healthy\s+yes\b`,
		`(?m)^v2\s+127\.0\.0\.3:20002\s+unhealthy\s+no\b`,
		`(?m)^\(all\)\s+127\.0\.0\.3:20002\s+unhealthy\s+no\b`,
	} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("output does not match %s", re)
		}
	}
}

func TestShowJSON(t *testing.T) {
	noLeaks(t)
	srv := splitServer(t)
	code, out, errOut := runShow(t, "greet.GreetService", "--xds", srv.Address(), "-o", "json")
	if code != ExitOK {
		t.Fatalf("exit %d, stderr %s", code, errOut)
	}
	var got showResult
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if got.Interface != "greet.GreetService" || got.Host != showHost+":50051" || got.XDS != srv.Address() {
		t.Errorf("header: %+v", got)
	}
	if len(got.Routes) != 2 || got.Routes[0].Name != "canary" || strings.Join(got.Routes[0].Matches, ";") != `path prefix "/greet.GreetService/", header x-canary exact "true"` {
		t.Fatalf("routes: %+v", got.Routes)
	}
	r := got.Routes[1]
	var split []string
	for _, d := range r.Destinations {
		split = append(split, d.Service+"/"+d.Subset+"="+jsonString(t, d.Percent))
	}
	if strings.Join(split, " ") != "greet.GreetService/v1=90 greet.GreetService/v2=10" {
		t.Errorf("split %v", split)
	}
	if r.Timeout != "3s" || r.Retry == nil || r.Retry.Attempts != 2 || r.Retry.PerTryTimeout != "1s" || r.Fault == nil || r.Fault.Delay != "50ms" || r.Fault.DelayPercent != 5 {
		t.Errorf("policy: timeout %q retry %+v fault %+v", r.Timeout, r.Retry, r.Fault)
	}
	health := map[string]string{}
	for _, s := range got.Services {
		for _, sub := range s.Subsets {
			for _, ep := range sub.Endpoints {
				health[s.Name+"/"+sub.Name+"/"+ep.Address] = ep.Health
			}
		}
	}
	want := map[string]string{
		"greet.GreetService/v1/127.0.0.1:20001": "healthy",
		"greet.GreetService/v2/127.0.0.2:20002": "healthy",
		"greet.GreetService/v2/127.0.0.3:20002": "unhealthy",
	}
	if jsonString(t, health) != jsonString(t, want) {
		t.Errorf("subset endpoints %v, want %v", health, want)
	}

	// YAML is the same document.
	code, out, errOut = runShow(t, "greet.GreetService", "--xds", srv.Address(), "-o", "yaml")
	if code != ExitOK || !strings.Contains(out, "host: "+showHost+":50051\n") || !strings.Contains(out, "subset: v2\n") {
		t.Errorf("yaml: exit %d\n%s%s", code, out, errOut)
	}
}

// A host-level target names the host itself; --group, --domain and --port
// change the host an interface maps to (here to one the fake does not serve).
func TestShowTargetAndConvention(t *testing.T) {
	noLeaks(t)
	srv := splitServer(t)
	code, out, errOut := runShow(t, "xds:///"+showHost+":50051", "--xds", srv.Address())
	if code != ExitOK || !regexp.MustCompile(`(?m)^v2\s+127\.0\.0\.2:20002\s+healthy`).MatchString(out) {
		t.Errorf("target: exit %d\n%s%s", code, out, errOut)
	}
	code, _, errOut = runShow(t, "greet.GreetService", "--xds", srv.Address(), "--group", "canary", "--domain", "mesh.internal", "--port", "7000")
	if code != ExitError || !strings.Contains(errOut, "(host greet.greetservice.canary.mesh.internal:7000)") {
		t.Errorf("convention: exit %d, stderr %s", code, errOut)
	}
}

func jsonString(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// istiod without the interface's service: exit 1, naming the host and what
// to apply.
func TestShowUnknownInterface(t *testing.T) {
	noLeaks(t)
	srv := splitServer(t)
	code, out, errOut := runShow(t, "other.MissingService", "--xds", srv.Address())
	if code != ExitError || out != "" {
		t.Fatalf("exit %d, stdout %q", code, out)
	}
	for _, want := range []string{"has no service for other.MissingService", "host other.missingservice.default.shoal.local:50051", "ServiceEntry"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr %q lacks %q", errOut, want)
		}
	}
}

// Nothing listens at the address: exit 1 at once (well before --timeout),
// saying how to get an istiod.
func TestShowUnreachableIstiod(t *testing.T) {
	noLeaks(t)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	if err := lis.Close(); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runShow(t, "greet.GreetService", "--xds", addr, "--timeout", "20s")
	if code != ExitError || out != "" {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	for _, want := range []string{"no istiod at " + addr, "connection refused", "shoal dev up", "--xds"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr %q lacks %q", errOut, want)
		}
	}
}

func TestShowUsage(t *testing.T) {
	if code, _, _ := runShow(t); code != ExitUsage {
		t.Errorf("no interface: exit %d", code)
	}
	if code, _, _ := runShow(t, "greet.GreetService", "-o", "xml"); code != ExitUsage {
		t.Errorf("-o xml: exit %d", code)
	}
}
