package kubestate_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync/atomic"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/shoalmesh/shoal/registry-istio/kubestate"
	"github.com/shoalmesh/shoal/registry-istio/mapping"
	"github.com/shoalmesh/shoal/sdk/registry"
)

const ns = "shop"

var (
	greet = registry.Key{Interface: "greet.GreetService"}
	hello = registry.Key{Interface: "hello.HelloService", Group: "blue"}
)

func host(t *testing.T, k registry.Key) string {
	t.Helper()
	h, err := mapping.Scheme{}.Host(k)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// newClient is a fake API server that gives every new object a UID, as the
// real one does.
func newClient(objs ...runtime.Object) *fake.FakeDynamicClient {
	c := fake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), map[schema.GroupVersionResource]string{
		kubestate.ServiceEntries:  "ServiceEntryList",
		kubestate.WorkloadEntries: "WorkloadEntryList",
		kubestate.Pods:            "PodList",
	}, objs...)
	var n atomic.Int64
	c.PrependReactor("create", "*", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if o, ok := a.(k8stesting.CreateAction).GetObject().(*unstructured.Unstructured); ok && o.GetUID() == "" {
			o.SetUID(types.UID(fmt.Sprintf("uid-%d", n.Add(1))))
		}
		return false, nil, nil
	})
	// The fake's tracker does not create objects on server-side apply: do
	// what the API server does for the fields this package applies.
	c.PrependReactor("patch", "workloadentries", func(a k8stesting.Action) (bool, runtime.Object, error) {
		pa := a.(k8stesting.PatchAction)
		if pa.GetPatchType() != types.ApplyPatchType {
			return false, nil, nil
		}
		obj := &unstructured.Unstructured{}
		if err := json.Unmarshal(pa.GetPatch(), &obj.Object); err != nil {
			return true, nil, err
		}
		tr := c.Tracker()
		cur, err := tr.Get(a.GetResource(), pa.GetNamespace(), pa.GetName())
		if apierrors.IsNotFound(err) {
			obj.SetUID(types.UID(fmt.Sprintf("uid-%d", n.Add(1))))
			return true, obj, tr.Create(a.GetResource(), obj, pa.GetNamespace())
		}
		if err != nil {
			return true, nil, err
		}
		obj.SetUID(cur.(*unstructured.Unstructured).GetUID())
		return true, obj, tr.Update(a.GetResource(), obj, pa.GetNamespace())
	})
	return c
}

func writer(t *testing.T, c *fake.FakeDynamicClient, wl kubestate.Workload) *kubestate.Writer {
	t.Helper()
	if wl.App == "" {
		wl.App = "greeter"
	}
	wl.Namespace = ns
	w, err := kubestate.New(c, wl, kubestate.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func serviceEntry(t *testing.T, c *fake.FakeDynamicClient) *unstructured.Unstructured {
	t.Helper()
	se, err := c.Resource(kubestate.ServiceEntries).Namespace(ns).Get(context.Background(), "greeter-shoal", metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return se
}

func hosts(se *unstructured.Unstructured) []string {
	h, _, _ := unstructured.NestedStringSlice(se.Object, "spec", "hosts")
	return h
}

func workloadEntries(t *testing.T, c *fake.FakeDynamicClient) []string {
	t.Helper()
	l, err := c.Resource(kubestate.WorkloadEntries).Namespace(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, o := range l.Items {
		names = append(names, o.GetName())
	}
	slices.Sort(names)
	return names
}

// TestReplicasShareTheServiceEntry walks two replicas through register and
// deregister: the entry carries the union of their hosts, a replica's
// WorkloadEntry goes when it serves nothing, and the entry goes with the
// last replica.
func TestReplicasShareTheServiceEntry(t *testing.T) {
	ctx := context.Background()
	c := newClient()
	a := writer(t, c, kubestate.Workload{Labels: map[string]string{"zone": "a"}})
	b := writer(t, c, kubestate.Workload{})
	inst := func(k registry.Key, addr string) registry.Instance {
		return registry.Instance{Key: k, Address: addr, Labels: map[string]string{"version": "v1"}}
	}
	steps := []struct {
		name   string
		do     func() error
		hosts  []string // nil: no ServiceEntry
		owners int
		wes    []string
	}{
		{
			"a registers greet", func() error { return a.Register(ctx, inst(greet, "127.0.0.21:20000")) },
			[]string{host(t, greet)},
			1,
			[]string{"greeter-127-0-0-21-20000"},
		},
		{
			"a registers hello on the same address", func() error { return a.Register(ctx, inst(hello, "127.0.0.21:20000")) },
			[]string{host(t, greet), host(t, hello)},
			1,
			[]string{"greeter-127-0-0-21-20000"},
		},
		{
			"registering again changes nothing", func() error { return a.Register(ctx, inst(hello, "127.0.0.21:20000")) },
			[]string{host(t, greet), host(t, hello)},
			1,
			[]string{"greeter-127-0-0-21-20000"},
		},
		{
			"b registers greet", func() error { return b.Register(ctx, inst(greet, "127.0.0.22:20001")) },
			[]string{host(t, greet), host(t, hello)},
			2,
			[]string{"greeter-127-0-0-21-20000", "greeter-127-0-0-22-20001"},
		},
		{
			"a deregisters hello: only a served it", func() error { return a.Deregister(ctx, inst(hello, "127.0.0.21:20000")) },
			[]string{host(t, greet)},
			2,
			[]string{"greeter-127-0-0-21-20000", "greeter-127-0-0-22-20001"},
		},
		{
			"a deregisters greet: its WorkloadEntry goes, b keeps the entry", func() error { return a.Deregister(ctx, inst(greet, "127.0.0.21:20000")) },
			[]string{host(t, greet)},
			1,
			[]string{"greeter-127-0-0-22-20001"},
		},
		{
			"deregistering again does nothing", func() error { return a.Deregister(ctx, inst(greet, "127.0.0.21:20000")) },
			[]string{host(t, greet)},
			1,
			[]string{"greeter-127-0-0-22-20001"},
		},
		{
			"the last replica leaves: nothing is left", func() error { return b.Deregister(ctx, inst(greet, "127.0.0.22:20001")) },
			nil, 0, nil,
		},
		{
			"deregistering with nothing there does nothing", func() error { return b.Deregister(ctx, inst(greet, "127.0.0.22:20001")) },
			nil, 0, nil,
		},
	}
	for _, s := range steps {
		if err := s.do(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		se := serviceEntry(t, c)
		switch {
		case s.hosts == nil && se != nil:
			t.Fatalf("%s: ServiceEntry still there: %v", s.name, se.Object)
		case s.hosts != nil && se == nil:
			t.Fatalf("%s: no ServiceEntry", s.name)
		case se != nil:
			if got := hosts(se); !slices.Equal(got, s.hosts) {
				t.Errorf("%s: hosts %v, want %v", s.name, got, s.hosts)
			}
			if got := len(se.GetOwnerReferences()); got != s.owners {
				t.Errorf("%s: %d owners, want %d", s.name, got, s.owners)
			}
			if se.GetLabels()[kubestate.ModeLabel] != kubestate.ModeDynamic {
				t.Errorf("%s: labels %v", s.name, se.GetLabels())
			}
		}
		if got := workloadEntries(t, c); !slices.Equal(got, s.wes) {
			t.Errorf("%s: WorkloadEntries %v, want %v", s.name, got, s.wes)
		}
	}
}

func TestWorkloadEntryShape(t *testing.T) {
	ctx := context.Background()
	c := newClient()
	w := writer(t, c, kubestate.Workload{Labels: map[string]string{"zone": "a"}})
	if err := w.Register(ctx, registry.Instance{
		Key: registry.Key{Interface: greet.Interface, Version: "2.0"}, Address: "127.0.0.21:20000",
		Labels: map[string]string{"bad key!": "x"},
	}); err != nil {
		t.Fatal(err)
	}
	we, err := c.Resource(kubestate.WorkloadEntries).Namespace(ns).Get(ctx, "greeter-127-0-0-21-20000", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	addr, _, _ := unstructured.NestedString(we.Object, "spec", "address")
	port, _, _ := unstructured.NestedFieldNoCopy(we.Object, "spec", "ports", kubestate.PortName)
	labels, _, _ := unstructured.NestedStringMap(we.Object, "spec", "labels")
	if addr != "127.0.0.21" || fmt.Sprint(port) != "20000" {
		t.Errorf("address %s port %v", addr, port)
	}
	want := map[string]string{"app": "greeter", "zone": "a", "version": "2.0"}
	if fmt.Sprint(labels) != fmt.Sprint(want) {
		t.Errorf("labels %v, want %v", labels, want)
	}
	se := serviceEntry(t, c)
	sel, _, _ := unstructured.NestedStringMap(se.Object, "spec", "workloadSelector", "labels")
	ports, _, _ := unstructured.NestedSlice(se.Object, "spec", "ports")
	if sel["app"] != "greeter" || len(ports) != 1 || fmt.Sprint(ports[0].(map[string]any)["targetPort"]) != "20000" {
		t.Errorf("ServiceEntry selector %v ports %v", sel, ports)
	}
}

// TestPreDeclaredEntryIsLeftAlone: an entry without the dynamic label
// (GitOps) is neither changed nor deleted.
func TestPreDeclaredEntryIsLeftAlone(t *testing.T) {
	ctx := context.Background()
	se := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "networking.istio.io/v1", "kind": "ServiceEntry",
		"metadata": map[string]any{"name": "greeter-shoal", "namespace": ns, "uid": "gitops", "labels": map[string]any{mapping.ManagedByLabel: "shoal"}},
		"spec":     map[string]any{"hosts": []any{"declared.default.shoal.local"}},
	}}
	c := newClient(se)
	w := writer(t, c, kubestate.Workload{})
	inst := registry.Instance{Key: greet, Address: "127.0.0.21:20000"}
	if err := w.Register(ctx, inst); err != nil {
		t.Fatal(err)
	}
	if got := hosts(serviceEntry(t, c)); !slices.Equal(got, []string{"declared.default.shoal.local"}) {
		t.Errorf("pre-declared hosts changed to %v", got)
	}
	if err := w.Deregister(ctx, inst); err != nil {
		t.Fatal(err)
	}
	if serviceEntry(t, c) == nil {
		t.Error("a pre-declared ServiceEntry was deleted")
	}
}

// TestPodOwnsItsRegistration: in a Pod whose IP is the address, the Pod is
// the owner and no WorkloadEntry is written.
func TestPodOwnsItsRegistration(t *testing.T) {
	ctx := context.Background()
	pod := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "Pod",
		"metadata": map[string]any{"name": "greeter-abc", "namespace": ns, "uid": "pod-uid", "labels": map[string]any{"app": "greeter"}},
		"status":   map[string]any{"podIP": "10.0.0.5"},
	}}
	c := newClient(pod)
	w := writer(t, c, kubestate.Workload{PodName: "greeter-abc"})
	inst := registry.Instance{Key: greet, Address: "10.0.0.5:20000"}
	if err := w.Register(ctx, inst); err != nil {
		t.Fatal(err)
	}
	owners := serviceEntry(t, c).GetOwnerReferences()
	if len(owners) != 1 || owners[0].Kind != "Pod" || owners[0].UID != "pod-uid" {
		t.Errorf("owners %+v, want the Pod", owners)
	}
	if wes := workloadEntries(t, c); len(wes) != 0 {
		t.Errorf("WorkloadEntries %v for a Pod", wes)
	}
	if err := w.Deregister(ctx, inst); err != nil {
		t.Fatal(err)
	}
	if serviceEntry(t, c) != nil {
		t.Error("ServiceEntry left after the Pod deregistered")
	}
}

// TestPodWithoutIPYet: a Pod whose IP the kubelet has not reported yet (the
// process registers as it starts) still owns the registration; a Pod with
// another IP does not.
func TestPodWithoutIPYet(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		podIP string
		owner string
	}{{"", "Pod"}, {"10.0.0.9", "WorkloadEntry"}} {
		status := map[string]any{}
		if tc.podIP != "" {
			status["podIP"] = tc.podIP
		}
		pod := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "v1", "kind": "Pod",
			"metadata": map[string]any{"name": "greeter-abc", "namespace": ns, "uid": "pod-uid", "labels": map[string]any{"app": "greeter"}},
			"status":   status,
		}}
		c := newClient(pod)
		w := writer(t, c, kubestate.Workload{PodName: "greeter-abc"})
		if err := w.Register(ctx, registry.Instance{Key: greet, Address: "10.0.0.5:20000"}); err != nil {
			t.Fatal(err)
		}
		if owners := serviceEntry(t, c).GetOwnerReferences(); len(owners) != 1 || owners[0].Kind != tc.owner {
			t.Errorf("podIP %q: owners %+v, want a %s", tc.podIP, owners, tc.owner)
		}
	}
}

func TestNewRejects(t *testing.T) {
	for _, wl := range []kubestate.Workload{{App: "", Namespace: ns}, {App: "Greeter_1", Namespace: ns}, {App: "greeter", Namespace: ""}} {
		if _, err := kubestate.New(newClient(), wl); err == nil {
			t.Errorf("New(%+v) accepted", wl)
		}
	}
	w := writer(t, newClient(), kubestate.Workload{})
	if err := w.Register(context.Background(), registry.Instance{Key: greet, Address: "greeter.local:20000"}); err == nil {
		t.Error("Register with a host name accepted; a WorkloadEntry needs an IP")
	}
}
