package command

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/shoalmesh/shoal/registry-istio/xdstest"
	"github.com/shoalmesh/shoal/sdk/mesh"
	"github.com/shoalmesh/shoal/triple"
)

// runCallCmd runs `shoal call` with args and returns the exit code, stdout
// and stderr.
func runCallCmd(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	return runShoal(t, "call", args...)
}

// startHealthServer serves triple's built-in health and reflection services
// on a loopback port until the test ends, and returns its address.
func startHealthServer(t *testing.T) string {
	t.Helper()
	srv := triple.NewServer()
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

func TestCallCountTally(t *testing.T) {
	var s callCount
	for range 3 {
		s.add("10.0.0.1:50051", "v1", nil)
	}
	s.add("10.0.0.2:50051", "v2", nil)
	s.add("10.0.0.2:50051", "v2", triple.NewError(triple.CodeUnavailable, "gone"))
	s.add("10.0.0.3:50051", "v1", nil)
	s.add("", "", triple.NewError(triple.CodeDeadlineExceeded, "late"))
	s.add("10.0.0.3:50051", "v1", errors.New("plain"))
	s.finish()

	var buf bytes.Buffer
	if err := s.writeText(&buf); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	t.Logf("output:\n%s", out)
	for _, re := range []string{
		`^8 calls: 5 OK, 1 UNKNOWN, 1 DEADLINE_EXCEEDED, 1 UNAVAILABLE\n`,
		`(?m)^ENDPOINT\s+VERSION\s+CALLS\s+OK\s+SHARE$`,
		`(?m)^10\.0\.0\.1:50051\s+v1\s+3\s+3\s+37\.5%$`,
		`(?m)^10\.0\.0\.2:50051\s+v2\s+2\s+1\s+25\.0%$`,
		`(?m)^10\.0\.0\.3:50051\s+v1\s+2\s+1\s+25\.0%$`,
		`(?m)^\(none\)\s+-\s+1\s+0\s+12\.5%$`,
		`\n\nVERSION  CALLS  OK  SHARE\n`,
		`(?m)^v1       5      4   62\.5%$`,
		`(?m)^v2       2      1   25\.0%$`,
	} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("output does not match %s", re)
		}
	}
	// Endpoints most called first, ties by address.
	if i, j := strings.Index(out, "10.0.0.2:"), strings.Index(out, "10.0.0.3:"); i > j {
		t.Errorf("10.0.0.2 listed after 10.0.0.3")
	}

	b, err := json.Marshal(&s)
	if err != nil {
		t.Fatal(err)
	}
	var back callCount
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Calls != 8 || len(back.Codes) != 4 || back.Codes[0] != (codeCount{Code: "OK", Number: 0, Calls: 5}) ||
		len(back.Versions) != 2 || back.Versions[0] != (versionCount{Version: "v1", Calls: 5, OK: 4, Percent: 62.5}) {
		t.Errorf("JSON round trip: %s", b)
	}
}

func TestEndpointVersion(t *testing.T) {
	for _, tc := range []struct {
		labels map[string]string
		want   string
	}{
		{map[string]string{"version": "v2", "istio.workload": "demoapp-v1;default;demoapp;v1;Kubernetes"}, "v2"},
		{map[string]string{"istio.workload": "demoapp-v1;default;demoapp;v1;Kubernetes"}, "v1"},
		{map[string]string{"istio.workload": "demoapp-v1;default"}, ""},
		{nil, ""},
	} {
		if got := endpointVersion(&mesh.Endpoint{Labels: tc.labels}); got != tc.want {
			t.Errorf("endpointVersion(%v) = %q, want %q", tc.labels, got, tc.want)
		}
	}
}

// -n through the mesh: an in-process fake istiod (registry-istio's
// xdstest) splits a host 90/10 between two real Triple servers (the
// xds:/// target calls any service they serve, here health). Every call is
// routed anew: both versions answer, v1 most.
func TestCallCountMeshSplit(t *testing.T) {
	noLeaks(t)
	v1, v2 := startHealthServer(t), startHealthServer(t)
	endpoint := func(addr, version string) xdstest.Endpoint {
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			t.Fatal(err)
		}
		var p uint32
		for _, c := range port {
			p = p*10 + uint32(c-'0')
		}
		return xdstest.Endpoint{IP: host, Port: p, Labels: map[string]string{"version": version}}
	}
	srv := xdstest.NewServer(t)
	srv.Set(xdstest.Split(showHost, 50051,
		xdstest.Subset{Name: "v1", Weight: 90, Endpoints: []xdstest.Endpoint{endpoint(v1, "v1")}},
		xdstest.Subset{Name: "v2", Weight: 10, Endpoints: []xdstest.Endpoint{endpoint(v2, "v2")}},
	))

	code, out, errOut := runCallCmd(t, "xds:///"+showHost+":50051", "grpc.health.v1.Health/Check", "--xds", srv.Address(), "-n", "400", "-o", "json")
	if code != ExitOK {
		t.Fatalf("exit %d, stderr %s", code, errOut)
	}
	var s callCount
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	t.Logf("%+v", s)
	if s.Calls != 400 || len(s.Codes) != 1 || s.Codes[0].Code != "OK" || s.Codes[0].Calls != 400 {
		t.Fatalf("want 400 calls all OK, got %s", out)
	}
	got := map[string]versionCount{}
	for _, v := range s.Versions {
		got[v.Version] = v
	}
	// A call pinned to one endpoint would leave v2 with nothing; with a
	// fresh pick per call v2 gets none of 400 with probability 0.9^400,
	// below 1e-18, and as many as v1 with a smaller one still.
	if len(got) != 2 || got["v2"].Calls == 0 || got["v1"].Calls <= got["v2"].Calls || got["v1"].OK != got["v1"].Calls {
		t.Errorf("versions %+v: want v1 > v2 > 0, all OK", s.Versions)
	}
	for _, e := range s.Endpoints {
		if want := map[string]string{v1: "v1", v2: "v2"}[e.Address]; e.Version != want {
			t.Errorf("endpoint %s version %q, want %q", e.Address, e.Version, want)
		}
	}
}

// -n at an address: every call to that address; the exit code is the first
// failed call's status code, with the counts printed all the same.
func TestCallCountAddress(t *testing.T) {
	noLeaks(t)
	addr := startHealthServer(t)
	code, out, errOut := runCallCmd(t, addr, "grpc.health.v1.Health/Check", "-n", "5")
	if code != ExitOK {
		t.Fatalf("exit %d, stderr %s", code, errOut)
	}
	for _, re := range []string{
		`^5 calls: 5 OK\n`,
		`(?m)^` + regexp.QuoteMeta(addr) + `\s+-\s+5\s+5\s+100\.0%$`,
	} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("output does not match %s:\n%s", re, out)
		}
	}
	if regexp.MustCompile(`(?m)^VERSION|"status"`).MatchString(out) {
		t.Errorf("no version table and no response for an address:\n%s", out)
	}

	code, out, errOut = runCallCmd(t, addr, "grpc.health.v1.Health/Check", "-n", "3", "-d", `{"service":"nope"}`)
	if code != int(triple.CodeNotFound) {
		t.Fatalf("exit %d, want %d (NOT_FOUND); stderr %s", code, triple.CodeNotFound, errOut)
	}
	if !regexp.MustCompile(`^3 calls: 3 NOT_FOUND\n(?s:.*)\n` + regexp.QuoteMeta(addr) + `\s+-\s+3\s+0\s+100\.0%\n`).MatchString(out) {
		t.Errorf("counts of failed calls:\n%s", out)
	}
}

func TestCallCountUsage(t *testing.T) {
	noLeaks(t)
	addr := startHealthServer(t)
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{addr, "grpc.health.v1.Health/Check", "-n", "0"}, "bad -n 0: make at least one call"},
		{[]string{addr, "grpc.health.v1.Health/Watch", "-n", "2"}, "-n repeats unary calls; /grpc.health.v1.Health/Watch is a streaming method"},
		{[]string{addr, "grpc.health.v1.Health/Check", "-n", "2", "--protocol", "http"}, "-n repeats calls over --protocol grpc or triple, not http"},
		{[]string{addr, "org.example.Greeter/greet", "-n", "2", "--hessian", "-a", `String:"x"`}, "-n repeats protobuf calls; --hessian makes one call"},
	} {
		code, _, errOut := runCallCmd(t, tc.args...)
		if code != ExitUsage || !strings.Contains(errOut, tc.msg) {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", tc.args, code, errOut, ExitUsage, tc.msg)
		}
	}
}
