package localmesh

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shoalmesh/shoal/localmesh/adsprobe"
)

// buildStandInPilot builds, from the pilot-discovery that
// scripts/controlplane.sh built, an image laid out as istio/pilot is (the
// binary at /usr/local/bin/pilot-discovery as the entrypoint, user
// 1337:1337), FROM scratch with the host's C libraries it links against:
// what this machine, which cannot pull, can run in its place.
func buildStandInPilot(ctx context.Context, t *testing.T, e *Engine) string {
	t.Helper()
	bin := filepath.Join(DefaultBinDir(), "bin", "pilot-discovery")
	tmp := t.TempDir()
	rootfs := filepath.Join(tmp, "rootfs")
	if err := copyFile(bin, filepath.Join(rootfs, "usr", "local", "bin", "pilot-discovery")); err != nil {
		t.Fatalf("%v (build it with scripts/controlplane.sh)", err)
	}
	libs, err := sharedLibraries(ctx, filepath.Join(rootfs, "usr", "local"))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range libs {
		if err := copyFile(l, filepath.Join(rootfs, l)); err != nil {
			t.Fatal(err)
		}
	}
	sum, err := fileHash(bin)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := e.buildImage(ctx, tmp, "shoal-test-pilot", sum,
		"FROM scratch\nCOPY rootfs/ /\nUSER 1337:1337\nENTRYPOINT [\"/usr/local/bin/pilot-discovery\"]\n")
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

// TestIstiodContainer runs the public path's istiod container, on a
// stand-in for istio/pilot (see buildStandInPilot), against the real API
// server: it answers ADS on its loopback address, a workload container
// reaches it at the gateway, it serves the workload's endpoints from the
// API server it reads through its copied kubeconfig, it comes back on the
// same address after a kill, and Stop leaves no container.
func TestIstiodContainer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the control plane with istiod in a container; run without -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	eng, err := NewEngine(ctx, nil, WithImageSource(PublicImages), WithPullPolicy(PullNever))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = eng.Close() }()
	pilot := buildStandInPilot(ctx, t, eng)
	start := time.Now()
	m, err := Start(ctx, WithImageSource(PublicImages), WithPullPolicy(PullNever),
		meshOption(func(c *config) { c.istiodImage = pilot }))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Stop()
	t.Logf("control plane with an istiod container up in %v", time.Since(start).Round(time.Millisecond))

	var names []string
	for _, c := range m.Components() {
		names = append(names, c.Name)
		if c.Name == "istiod-0" && (c.PID <= 0 || c.RSS == 0) {
			t.Errorf("istiod-0: PID %d RSS %d; want its container's process", c.PID, c.RSS)
		}
		t.Logf("%-24s RSS %4d MiB", c.Name, c.RSS>>20)
	}
	if !slices.Contains(names, "istiod-0") {
		t.Errorf("components %v lack istiod-0", names)
	}

	if err := m.Apply(ctx, `
apiVersion: v1
kind: Service
metadata: {name: echo, namespace: default}
spec:
  selector: {app: echo}
  ports: [{name: http, port: 20000, protocol: TCP}]
`); err != nil {
		t.Fatal(err)
	}
	image, err := eng.BuildGoImage(ctx, GoImage{Name: "shoal-testworkload", Dir: ".", Package: "./internal/testworkload"})
	if err != nil {
		t.Fatal(err)
	}
	w, err := m.RunWorkload(ctx, eng, WorkloadSpec{
		Name: "echo", Image: image, Labels: map[string]string{"app": "echo"},
		Env: map[string]string{"PORT": "20000"}, ReadyPort: 20000,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = w.Stop(context.WithoutCancel(ctx), 5*time.Second) }()
	if body, err := get(ctx, "http://"+w.Addr(20000)+"/xds"); err != nil || body != "ok" {
		t.Errorf("the workload cannot reach the istiod container at %s: %q %v", m.IstiodAddrFrom(eng, 0), body, err)
	}
	waitEndpoints(ctx, t, m.IstiodAddr(0), "outbound|20000||echo.default.svc.cluster.local", []string{w.Addr(20000)})

	addr := m.IstiodAddr(0)
	if err := m.StopIstiod(0); err != nil {
		t.Fatal(err)
	}
	pctx, pcancel := context.WithTimeout(ctx, time.Second)
	if err := adsprobe.Ping(pctx, addr); err == nil {
		t.Error("istiod-0 still answers after it was killed")
	}
	pcancel()
	if err := m.StartIstiod(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if got := m.IstiodAddr(0); got != addr {
		t.Errorf("istiod-0 came back on %s, want %s", got, addr)
	}
	waitEndpoints(ctx, t, addr, "outbound|20000||echo.default.svc.cluster.local", []string{w.Addr(20000)})

	if err := w.Stop(ctx, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	dir := m.Dir()
	m.Stop()
	if left := eng.Containers(ctx); len(left) != 0 {
		t.Errorf("containers left after Stop: %v", left)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("state directory %s remains: %v", dir, err)
	}
}

func get(ctx context.Context, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	return strings.TrimSpace(string(b)), err
}

// waitEndpoints waits (up to 15 s) until istiod at addr serves want as the
// endpoints of cluster.
func waitEndpoints(ctx context.Context, t *testing.T, addr, cluster string, want []string) {
	t.Helper()
	var got []string
	var err error
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		var c *adsprobe.Client
		if c, err = adsprobe.Dial(ctx, addr, "default"); err != nil {
			continue
		}
		fctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		got, err = c.Endpoints(fctx, cluster)
		cancel()
		c.Close()
		if err == nil && slices.Equal(got, want) {
			return
		}
	}
	t.Errorf("%s: EDS %s = %v (%v), want %v", addr, cluster, got, err, want)
}
