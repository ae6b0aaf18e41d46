package command

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	istio "github.com/shoalmesh/shoal/registry-istio"
	"github.com/shoalmesh/shoal/sdk/app"
	"github.com/shoalmesh/shoal/sdk/config"
	"github.com/shoalmesh/shoal/sdk/registry"
	"github.com/shoalmesh/shoal/sdk/registry/file"
	"github.com/shoalmesh/shoal/sdk/tri"
)

// startMeshApp starts a real sdk app with one reference to
// greet.GreetService through the registry described by registryYAML, and
// serves its MeshView at /debug/mesh on a loopback HTTP server: a stand-in
// for the admin endpoint, which observabilityfx's TestMeshView checks
// serves the same view. It returns the server's host:port once the
// reference has its first snapshot.
func startMeshApp(t *testing.T, registryYAML string) string {
	t.Helper()
	cfg, err := config.Load(config.WithoutFile(), config.WithEnv(func(string) (string, bool) { return "", false }),
		config.WithYAML("shoal.yaml", []byte(`
application: {name: caller}
`+registryYAML+`
references: [{name: greeter, interface: greet.GreetService}]
`)))
	if err != nil {
		t.Fatal(err)
	}
	a, err := app.New(cfg, app.WithTransport(tri.NewTransport()), app.WithLogger(slog.New(slog.DiscardHandler)),
		app.WithRegistryBuilders(registry.NewBuilders(file.Builder(), istio.Builder())))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Stop(context.Background()) })
	ref, err := a.Reference("greeter")
	if err != nil {
		t.Fatal(err)
	}
	if err := ref.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc(app.MeshViewPath, func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(a.MeshView(r.URL.Query().Get("interface")))
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// An app whose reference follows the same istiod as shoal show: the same
// table, and no difference.
func TestShowAppMatchesIstiod(t *testing.T) {
	srv := splitServer(t)
	t.Setenv("SHOAL_XDS_ADDRESS", srv.Address())
	addr := startMeshApp(t, `registries: [{name: mesh, kind: istio, params: {publish: "false"}}]`)
	noLeaks(t)
	code, out, errOut := runShow(t, "greet.GreetService", "--app", addr)
	if code != ExitOK {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	t.Logf("output:\n%s", out)
	for _, re := range []string{
		`(?m)^App:\s+` + regexp.QuoteMeta(addr) + ` \(reference greeter, registry mesh \(istio\)\)$`,
		`(?m)^2\s+any\s+greet\.GreetService subset v1\s+90 \(90%\)\s+3s\s+2 x 1s on unavailable\s+delay 50ms 5%$`,
		`(?m)^v2\s+127\.0\.0\.3:20002\s+unhealthy\s+no\b`,
		`(?m)^The app's view matches istiod's\.$`,
	} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("output does not match %s", re)
		}
	}
}

// An app that finds the interface in a file registry instead: its view
// is shown, every difference listed, exit 1; the same in JSON.
func TestShowAppDiffers(t *testing.T) {
	srv := splitServer(t)
	reg := filepath.Join(t.TempDir(), "registry.yaml")
	if err := os.WriteFile(reg, []byte(`
services:
  greet.GreetService:
    instances:
      - {address: "127.0.0.1:20001", labels: {version: v1}}
      - {address: "127.0.0.9:20009", labels: {version: v2}}
    subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}]
`), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := startMeshApp(t, `registries: [{name: local, kind: file, address: `+reg+`}]`)
	noLeaks(t)
	code, out, errOut := runShow(t, "greet.GreetService", "--app", addr, "--xds", srv.Address())
	if code != ExitError {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	t.Logf("output:\n%s", out)
	if !strings.Contains(errOut, "the app's view differs from istiod's in") {
		t.Errorf("stderr %q", errOut)
	}
	for _, want := range []string{
		"App:        " + addr + " (reference greeter, registry local (file))",
		"service greet.GreetService max requests: the app has 0, istiod 1024",
		"routes: the app has 0, istiod 2",
		"service greet.GreetService: endpoint 127.0.0.1:20001 is unknown, weight 1, locality - in the app's view; healthy, weight 1, locality - in istiod's",
		"service greet.GreetService: endpoint 127.0.0.9:20009 only in the app's view",
		"service greet.GreetService: endpoint 127.0.0.2:20002 only in istiod's view",
		"service greet.GreetService subset v2: endpoint 127.0.0.3:20002 only in istiod's view",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}

	code, out, _ = runShow(t, "greet.GreetService", "--app", addr, "--xds", srv.Address(), "-o", "json")
	var got showResult
	if err := json.Unmarshal([]byte(out), &got); err != nil || code != ExitError {
		t.Fatalf("exit %d, %v\n%s", code, err, out)
	}
	if got.App == nil || got.App.Istiod == nil || len(got.App.Istiod.Routes) != 2 || len(got.Routes) != 0 || len(got.App.Differences) < 5 {
		t.Errorf("json: %s", out)
	}
}

// The errors: no admin endpoint at the address, an endpoint without
// /debug/mesh, an app without a reference to the interface.
func TestShowAppErrors(t *testing.T) {
	srv := splitServer(t)
	t.Setenv("SHOAL_XDS_ADDRESS", srv.Address())
	addr := startMeshApp(t, `registries: [{name: mesh, kind: istio, params: {publish: "false"}}]`)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := lis.Addr().String()
	_ = lis.Close()
	plain := httptest.NewServer(http.NotFoundHandler())
	defer plain.Close()
	noLeaks(t)
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"greet.GreetService", "--app", closed}, ExitError, "no admin endpoint at " + closed},
		{[]string{"greet.GreetService", "--app", plain.URL}, ExitError, "serves no /debug/mesh"},
		{[]string{"other.OtherService", "--app", addr}, ExitError, "has no started reference to other.OtherService; its references: greeter (greet.GreetService)"},
		{[]string{"greet.GreetService", "--app", addr, "--group", "canary"}, ExitError, "no started reference to greet.GreetService in group canary"},
		{[]string{"greet.GreetService", "--app", "http://"}, ExitUsage, "give the app's admin endpoint as host:port"},
	} {
		code, _, errOut := runShow(t, tc.args...)
		if code != tc.code || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", tc.args, code, errOut, tc.code, tc.want)
		}
	}
}
