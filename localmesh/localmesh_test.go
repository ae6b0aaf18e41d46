package localmesh_test

import (
	"context"
	"fmt"
	"reflect"
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

// workloads are two providers of greeter, v1 and v2, as WorkloadEntries
// behind one Service, with the DestinationRule that names the subsets.
const workloads = `
apiVersion: v1
kind: Service
metadata: {name: greeter, namespace: default}
spec:
  selector: {app: greeter}
  ports: [{name: grpc, port: 20000, protocol: TCP}]
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: greeter-v1, namespace: default}
spec: {address: 127.0.0.10, labels: {app: greeter, version: v1}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: greeter-v2, namespace: default}
spec: {address: 127.0.0.11, labels: {app: greeter, version: v2}}
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
// checks over real ADS streams, as a proxyless client sees it, that istiod
// serves the endpoints, the subsets, a traffic split, and its update within
// a second; then kills and restarts istiod.
func TestControlPlane(t *testing.T) {
	if testing.Short() {
		t.Skip("starts etcd, kube-apiserver, kube-controller-manager and two istiods; run without -short (make test)")
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

	if err := m.Apply(ctx, workloads+"---"+split(80, 20)); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		t.Run(fmt.Sprintf("istiod-%d", i), func(t *testing.T) {
			checkServes(ctx, t, m.IstiodAddr(i))
		})
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

	// Kill istiod-0 as a crash would, then bring it back.
	if err := m.StopIstiod(0); err != nil {
		t.Fatal(err)
	}
	pctx, pcancel := context.WithTimeout(ctx, time.Second)
	if err := adsprobe.Ping(pctx, m.IstiodAddr(0)); err == nil {
		t.Error("istiod-0 still answers after it was killed")
	}
	pcancel()
	checkServes(ctx, t, m.IstiodAddr(1)) // the other replica carries on
	if err := m.StartIstiod(ctx, 0); err != nil {
		t.Fatal(err)
	}
	checkServes(ctx, t, m.IstiodAddr(0))
}

// checkServes asserts what one istiod serves a proxyless client.
func checkServes(ctx context.Context, t *testing.T, addr string) {
	t.Helper()
	c, err := adsprobe.Dial(ctx, addr, "default")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { c.Close() }() // c is replaced when a stream is redialed
	want := map[string][]string{
		"outbound|20000||" + host: {"127.0.0.10:20000", "127.0.0.11:20000"},
		subset("v1"):              {"127.0.0.10:20000"},
		subset("v2"):              {"127.0.0.11:20000"},
	}
	for cluster, eps := range want {
		var got []string
		deadline := time.Now().Add(10 * time.Second)
		for {
			fctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			got, err = c.Endpoints(fctx, cluster)
			cancel()
			if err == nil && reflect.DeepEqual(got, eps) || time.Now().After(deadline) {
				break
			}
			c.Close()
			if c, err = adsprobe.Dial(ctx, addr, "default"); err != nil {
				t.Fatal(err)
			}
			time.Sleep(100 * time.Millisecond)
		}
		if !reflect.DeepEqual(got, eps) {
			t.Errorf("%s: EDS %s = %v (%v), want %v", addr, cluster, got, err, eps)
		}
	}
}
