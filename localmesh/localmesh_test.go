package localmesh_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/shoalmesh/shoal/localmesh"
	"github.com/shoalmesh/shoal/localmesh/adsprobe"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// client-go's discovery cache and klog keep process-wide goroutines.
		goleak.IgnoreTopFunction("k8s.io/klog/v2.(*flushDaemon).run.func1"),
		goleak.IgnoreAnyFunction("k8s.io/client-go/util/workqueue.(*Type).updateUnfinishedWorkLoop"),
	)
}

const (
	host    = "greeter.default.svc.cluster.local"
	rdsName = "outbound|20000||" + host
)

func subset(v string) string { return "outbound|20000|" + v + "|" + host }

// service is greeter's Service and the DestinationRule that names its
// subsets; the Pods behind it are containers v1 and v2.
const service = `
apiVersion: v1
kind: Service
metadata: {name: greeter, namespace: default}
spec:
  selector: {app: greeter}
  ports: [{name: grpc, port: 20000, protocol: TCP}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: greeter, namespace: default}
spec:
  host: greeter.default.svc.cluster.local
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
`

func split(v1, v2 int) string {
	return fmt.Sprintf(`
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: greeter, namespace: default}
spec:
  hosts: [greeter.default.svc.cluster.local]
  http:
  - route:
    - {destination: {host: greeter.default.svc.cluster.local, subset: v1}, weight: %d}
    - {destination: {host: greeter.default.svc.cluster.local, subset: v2}, weight: %d}
`, v1, v2)
}

// TestControlPlane runs the real control plane (two istiod replicas) and
// two workload containers, v1 and v2, published as Pods behind one Service.
// Over real ADS streams, as a proxyless client sees it, it checks that both
// istiods serve the containers' addresses from the EndpointSlices the real
// controller-manager built, the subsets, a traffic split and its update
// within a second; that the containers reach istiod; then it kills and
// restarts istiod and stops a container, and finally checks that nothing is
// left behind.
func TestControlPlane(t *testing.T) {
	if testing.Short() {
		t.Skip("starts etcd, kube-apiserver, kube-controller-manager, two istiods and containers; run without -short (make test)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	start := time.Now()
	m, err := localmesh.Start(ctx, localmesh.WithIstiods(2))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Stop()
	t.Logf("control plane up in %v", time.Since(start).Round(time.Millisecond))

	eng, err := localmesh.NewEngine(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = eng.Close() }()
	built := time.Now()
	image, err := eng.BuildGoImage(ctx, localmesh.GoImage{Name: "shoal-testworkload", Dir: ".", Package: "./internal/testworkload"})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("image %s ready in %v", image, time.Since(built).Round(time.Millisecond))

	if err := m.Apply(ctx, service+"---"+split(80, 20)); err != nil {
		t.Fatal(err)
	}
	var ws []*localmesh.Workload
	for i, v := range []string{"v1", "v2"} {
		w, err := m.RunWorkload(ctx, eng, localmesh.WorkloadSpec{
			Name:      "greeter-" + v,
			Image:     image,
			Labels:    map[string]string{"app": "greeter", "version": v},
			Env:       map[string]string{"PORT": "20000"},
			ReadyPort: 20000,
			Istiod:    i,
		})
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = w.Stop(context.WithoutCancel(ctx), 5*time.Second) }()
		ws = append(ws, w)
	}
	t.Logf("workloads %s (v1) and %s (v2) ready %v after start", ws[0].IP(), ws[1].IP(), time.Since(start).Round(time.Millisecond))
	for _, w := range ws {
		if body, err := httpGet(ctx, "http://"+w.Addr(20000)+"/xds"); err != nil || body != "ok" {
			t.Errorf("%s cannot reach istiod from its container: %q %v", w.Name(), body, err)
		}
		if body, err := httpGet(ctx, "http://"+w.Addr(20000)+"/"); err != nil || body != w.Name() {
			t.Errorf("%s answers %q %v", w.Name(), body, err)
		}
	}
	eps := map[string][]string{
		"outbound|20000||" + host: {ws[0].Addr(20000), ws[1].Addr(20000)},
		subset("v1"):              {ws[0].Addr(20000)},
		subset("v2"):              {ws[1].Addr(20000)},
	}
	for i := range 2 {
		t.Run(fmt.Sprintf("istiod-%d", i), func(t *testing.T) {
			checkServes(ctx, t, m.IstiodAddr(i), eps)
		})
	}

	for _, c := range m.Components() {
		t.Logf("%-24s RSS %4d MiB", c.Name, c.RSS>>20)
	}

	// A VirtualService change reaches RDS within a second.
	applied := time.Now()
	if err := m.Apply(ctx, split(50, 50)); err != nil {
		t.Fatal(err)
	}
	wctx, wcancel := context.WithTimeout(ctx, 5*time.Second)
	defer wcancel()
	if _, err := adsprobe.WaitRouteWeights(wctx, m.IstiodAddr(0), "default", rdsName,
		map[string]uint32{subset("v1"): 50, subset("v2"): 50}); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(applied); d > time.Second {
		t.Errorf("the 50/50 split reached RDS %v after the apply, want under 1s", d)
	} else {
		t.Logf("RDS update %v after the apply", d.Round(time.Millisecond))
	}

	// Kill istiod-0 as a crash would, then bring it back on its address.
	addr0 := m.IstiodAddr(0)
	if err := m.StopIstiod(0); err != nil {
		t.Fatal(err)
	}
	pctx, pcancel := context.WithTimeout(ctx, time.Second)
	if err := adsprobe.Ping(pctx, addr0); err == nil {
		t.Error("istiod-0 still answers after it was killed")
	}
	pcancel()
	checkServes(ctx, t, m.IstiodAddr(1), eps) // the other replica carries on
	if err := m.StartIstiod(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if got := m.IstiodAddr(0); got != addr0 {
		t.Errorf("istiod-0 came back on %s, want its old address %s", got, addr0)
	}
	checkServes(ctx, t, addr0, eps)
	if body, err := httpGet(ctx, "http://"+ws[0].Addr(20000)+"/xds"); err != nil || body != "ok" {
		t.Errorf("v1 cannot reach the restarted istiod: %q %v", body, err)
	}

	// A stopped container leaves the endpoints, as a terminated Pod does.
	if err := ws[1].Stop(ctx, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	checkServes(ctx, t, m.IstiodAddr(1), map[string][]string{
		"outbound|20000||" + host: {ws[0].Addr(20000)},
		subset("v2"):              nil,
	})

	if err := ws[0].Stop(ctx, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	// Stopping the control plane leaves none of its processes.
	comps := m.Components()
	m.Stop()
	for _, c := range comps {
		if err := syscall.Kill(c.PID, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("%s (pid %d) still exists after Stop: %v", c.Name, c.PID, err)
		}
	}
	if n := eng.CleanStale(ctx); n != 0 {
		t.Errorf("CleanStale found %d containers of finished runs", n)
	}
	if left := eng.Containers(ctx); len(left) != 0 {
		t.Errorf("containers left behind: %v", left)
	}
}

func httpGet(ctx context.Context, url string) (string, error) {
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

// checkServes asserts what one istiod serves a proxyless client.
func checkServes(ctx context.Context, t *testing.T, addr string, want map[string][]string) {
	t.Helper()
	c, err := adsprobe.Dial(ctx, addr, "default")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { c.Close() }() // c is replaced when a stream is redialed
	for cluster, eps := range want {
		eps = slices.Sorted(slices.Values(eps))
		var got []string
		deadline := time.Now().Add(10 * time.Second)
		for {
			fctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			got, err = c.Endpoints(fctx, cluster)
			cancel()
			slices.Sort(got)
			if err == nil && slices.Equal(got, eps) || time.Now().After(deadline) {
				break
			}
			c.Close()
			if c, err = adsprobe.Dial(ctx, addr, "default"); err != nil {
				t.Fatal(err)
			}
			time.Sleep(100 * time.Millisecond)
		}
		if !slices.Equal(got, eps) {
			t.Errorf("%s: EDS %s = %v (%v), want %v", addr, cluster, got, err, eps)
		}
	}
}
