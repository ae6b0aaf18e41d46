package localmesh_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/shoalmesh/shoal/localmesh"
)

var vsGVR = schema.GroupVersionResource{Group: "networking.istio.io", Version: "v1", Resource: "virtualservices"}

// TestDeleteAndLogDir runs the real control plane (one istiod, no
// controller-manager) with its logs in a directory of the test's: Apply
// and then Delete a VirtualService through the Mesh and through a Client
// of its kubeconfig (a second Delete reports NotFound); a restarted istiod
// appends to its log; after Stop the logs are still there and the run
// directory is gone.
func TestDeleteAndLogDir(t *testing.T) {
	if testing.Short() {
		t.Skip("starts etcd, kube-apiserver and istiod; run without -short (make test)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	logs := filepath.Join(t.TempDir(), "logs")
	m, err := localmesh.Start(ctx, localmesh.WithoutControllerManager(), localmesh.WithLogDir(logs))
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			m.Stop()
		}
	}()
	if m.LogDir() != logs {
		t.Fatalf("LogDir() = %s, want %s", m.LogDir(), logs)
	}
	vs := split(90, 10)
	exists := func() bool {
		_, err := m.Dynamic().Resource(vsGVR).Namespace("default").Get(ctx, "greeter", metav1.GetOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			t.Fatal(err)
		}
		return err == nil
	}
	client, err := localmesh.NewClient(m.Kubeconfig())
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]interface {
		Apply(context.Context, []byte) error
		Delete(context.Context, []byte) error
	}{"Mesh": meshBytes{m}, "Client": client} {
		if err := c.Apply(ctx, []byte(vs)); err != nil {
			t.Fatalf("%s.Apply: %v", name, err)
		}
		if !exists() {
			t.Fatalf("%s.Apply: the VirtualService is not there", name)
		}
		if err := c.Delete(ctx, []byte(vs)); err != nil {
			t.Fatalf("%s.Delete: %v", name, err)
		}
		if exists() {
			t.Fatalf("%s.Delete: the VirtualService is still there", name)
		}
		if err := c.Delete(ctx, []byte(vs)); !apierrors.IsNotFound(err) {
			t.Fatalf("%s.Delete of a missing object: err = %v, want NotFound", name, err)
		}
	}

	if err := m.StopIstiod(0); err != nil {
		t.Fatal(err)
	}
	if err := m.StartIstiod(ctx, 0); err != nil {
		t.Fatal(err)
	}
	run := m.Dir()
	m.Stop()
	stopped = true
	if _, err := os.Stat(run); !os.IsNotExist(err) {
		t.Errorf("run directory %s after Stop: %v, want it removed", run, err)
	}
	b, err := os.ReadFile(filepath.Join(logs, "istiod-0.log"))
	if err != nil {
		t.Fatalf("istiod's log after Stop: %v", err)
	}
	if n := strings.Count(string(b), "=== localmesh: istiod-0 started at "); n != 2 {
		t.Errorf("istiod-0.log has %d starts, want 2 (a restart appends):\n%s", n, b)
	}
	for _, c := range []string{"etcd", "kube-apiserver"} {
		if fi, err := os.Stat(filepath.Join(logs, c+".log")); err != nil || fi.Size() == 0 {
			t.Errorf("%s.log after Stop: %v, want it kept", c, err)
		}
	}
}

// meshBytes gives Mesh's Apply and Delete the []byte signature of Client's.
type meshBytes struct{ m *localmesh.Mesh }

func (b meshBytes) Apply(ctx context.Context, y []byte) error  { return b.m.Apply(ctx, string(y)) }
func (b meshBytes) Delete(ctx context.Context, y []byte) error { return b.m.Delete(ctx, string(y)) }
