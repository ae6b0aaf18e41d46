// Package e2etest holds the set-up the interop end-to-end packages share: the
// goroutines their leak checks ignore, and a real local control plane with
// the meshgreeter image built.
package e2etest

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"go.uber.org/goleak"

	"github.com/shoalmesh/shoal/localmesh"
)

// IgnoreControlPlane lists the goroutines client-go and klog start once
// per process and never stop; every leak check of a package that talks to
// the local kube-apiserver ignores them.
var IgnoreControlPlane = []goleak.Option{
	goleak.IgnoreTopFunction("k8s.io/klog/v2.(*flushDaemon).run.func1"),
	goleak.IgnoreAnyFunction("k8s.io/client-go/util/workqueue.(*Type).updateUnfinishedWorkLoop"),
}

// GreeterRules is the Service over the meshgreeter Pods (app: greeter,
// port 20000) and the DestinationRule naming their subsets v1 and v2.
const GreeterRules = `
apiVersion: v1
kind: Service
metadata: {name: greeter, namespace: default}
spec:
  selector: {app: greeter}
  ports: [{name: grpc-tri, port: 20000, protocol: TCP}]
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

// StartMesh starts a local control plane with opts, a container engine,
// both logging to logger, and builds the meshgreeter image
// (interop/cmd/meshgreeter) from the interop module, the parent of the
// test's package directory. Both are stopped through addCleanup
// (t.Cleanup, or a package's shared cleanup).
func StartMesh(ctx context.Context, t testing.TB, addCleanup func(func()), logger *slog.Logger, opts ...localmesh.Option) (m *localmesh.Mesh, eng *localmesh.Engine, image string) {
	t.Helper()
	m, err := localmesh.Start(ctx, append([]localmesh.Option{localmesh.WithLogger(logger)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	addCleanup(m.Stop)
	eng, err = localmesh.NewEngine(ctx, logger)
	if err != nil {
		t.Fatal(err)
	}
	addCleanup(func() { _ = eng.Close() })
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	image, err = eng.BuildGoImage(ctx, localmesh.GoImage{Name: "shoal-meshgreeter", Dir: filepath.Dir(wd), Package: "./cmd/meshgreeter"})
	if err != nil {
		t.Fatal(err)
	}
	return m, eng, image
}
