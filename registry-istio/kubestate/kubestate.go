package kubestate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/dynamic"

	"github.com/shoalmesh/shoal/registry-istio/mapping"
	"github.com/shoalmesh/shoal/sdk/registry"
)

// Resources this package reads and writes.
var (
	ServiceEntries  = schema.GroupVersionResource{Group: "networking.istio.io", Version: "v1", Resource: "serviceentries"}
	WorkloadEntries = schema.GroupVersionResource{Group: "networking.istio.io", Version: "v1", Resource: "workloadentries"}
	Pods            = schema.GroupVersionResource{Version: "v1", Resource: "pods"}
)

// Labels and annotations on the objects this package writes.
const (
	// ModeLabel marks a ServiceEntry written by registering providers (value
	// ModeDynamic); entries without it are pre-declared and never touched.
	ModeLabel   = "registry.shoal.io/mode"
	ModeDynamic = "dynamic"
	// HostsAnnotationPrefix + an owner's UID lists the hosts that owner
	// (a Pod or WorkloadEntry) serves, comma-separated.
	HostsAnnotationPrefix = "hosts.shoal.io/"
	// FieldManager is the field manager of the server-side applies.
	FieldManager = "shoal-registry-istio"
	// PortName is the ServiceEntry port name a WorkloadEntry maps to its
	// real port.
	PortName = "tri"
)

// Workload is who registers: the application (its replicas share one
// ServiceEntry) and, when it runs in a Pod, the Pod.
type Workload struct {
	// App is the application's name: the ServiceEntry is <App>-shoal and
	// selects app: <App>.
	App       string
	Namespace string
	// PodName is the Pod this process runs in (POD_NAME), if any. When the
	// Pod exists and its IP is the registered address (or not reported
	// yet), the Pod owns the registration and no WorkloadEntry is written.
	PodName string
	// Labels are extra labels of a WorkloadEntry (not of a Pod, which
	// carries its own).
	Labels map[string]string
}

// Option configures a Writer.
type Option func(*config)

type config struct {
	scheme   mapping.Scheme
	logger   *slog.Logger
	attempts int
}

// WithScheme sets the interface-to-host convention (default mapping.Scheme{}).
func WithScheme(s mapping.Scheme) Option { return func(c *config) { c.scheme = s } }

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// Writer registers and deregisters provider instances of one workload.
// It is safe for concurrent use.
type Writer struct {
	dyn dynamic.Interface
	wl  Workload
	cfg config
	log *slog.Logger

	mu  sync.Mutex
	pod *metav1.OwnerReference // the Pod owner once looked up
}

// New returns a writer for the workload through the given client.
func New(dyn dynamic.Interface, wl Workload, opts ...Option) (*Writer, error) {
	cfg := config{logger: slog.Default(), attempts: 20}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.logger == nil {
		cfg.logger = slog.Default()
	}
	var errs []error
	if dyn == nil {
		errs = append(errs, errors.New("no Kubernetes client"))
	}
	if msgs := validation.IsDNS1123Label(wl.App); len(msgs) > 0 {
		errs = append(errs, fmt.Errorf("application name %q: %s; set the registry's app param (or the app label)", wl.App, strings.Join(msgs, ", ")))
	}
	if msgs := validation.IsDNS1123Label(wl.Namespace); len(msgs) > 0 {
		errs = append(errs, fmt.Errorf("namespace %q: %s; set POD_NAMESPACE", wl.Namespace, strings.Join(msgs, ", ")))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("registry-istio: kubestate: %w", err)
	}
	wl.Labels = maps.Clone(wl.Labels)
	return &Writer{dyn: dyn, wl: wl, cfg: cfg, log: cfg.logger.With("component", "registry-istio/kubestate")}, nil
}

// ServiceEntryName is the name of the application's ServiceEntry.
func (w *Writer) ServiceEntryName() string { return w.wl.App + "-shoal" }

// WorkloadEntryName is the name of the WorkloadEntry for a provider
// address that is not a Pod's.
func (w *Writer) WorkloadEntryName(address string) string {
	r := strings.NewReplacer(".", "-", ":", "-", "[", "", "]", "")
	return strings.ToLower(w.wl.App + "-" + r.Replace(address))
}

// Register writes the instance's state: its WorkloadEntry (unless a Pod
// carries it) and its host in the application's ServiceEntry.
func (w *Writer) Register(ctx context.Context, inst registry.Instance) error {
	if err := inst.Validate(); err != nil {
		return err
	}
	host, err := w.cfg.scheme.Host(inst.Key)
	if err != nil {
		return err
	}
	ip, port, err := splitAddress(inst.Address)
	if err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	owner, err := w.podOwner(ctx, ip)
	if err != nil {
		return err
	}
	if owner == nil {
		if owner, err = w.applyWorkloadEntry(ctx, inst, ip, port); err != nil {
			return err
		}
	}
	_, err = w.updateServiceEntry(ctx, port, *owner, func(hosts []string) []string {
		return addHost(hosts, host)
	})
	return err
}

// Deregister removes the instance's host from its owner's share of the
// ServiceEntry; when the owner serves no host any more, it leaves the
// entry (deleted when no owner is left) and its WorkloadEntry is deleted.
// Deregistering what is not registered does nothing.
func (w *Writer) Deregister(ctx context.Context, inst registry.Instance) error {
	if err := inst.Validate(); err != nil {
		return err
	}
	host, err := w.cfg.scheme.Host(inst.Key)
	if err != nil {
		return err
	}
	ip, port, err := splitAddress(inst.Address)
	if err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	owner, err := w.podOwner(ctx, ip)
	if err != nil {
		return err
	}
	weName := ""
	if owner == nil {
		weName = w.WorkloadEntryName(inst.Address)
		we, err := w.dyn.Resource(WorkloadEntries).Namespace(w.wl.Namespace).Get(ctx, weName, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return w.apiErr("read WorkloadEntry "+weName, err)
		}
		owner = ownerOf(we)
	}
	left, err := w.updateServiceEntry(ctx, port, *owner, func(hosts []string) []string {
		return slices.DeleteFunc(hosts, func(h string) bool { return h == host })
	})
	if err != nil {
		return err
	}
	if left == 0 && weName != "" {
		err := w.dyn.Resource(WorkloadEntries).Namespace(w.wl.Namespace).Delete(ctx, weName, metav1.DeleteOptions{
			Preconditions: &metav1.Preconditions{UID: &owner.UID},
		})
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			return w.apiErr("delete WorkloadEntry "+weName, err)
		}
		w.log.Info("WorkloadEntry deleted", "name", weName)
	}
	return nil
}

// podOwner returns the Pod as owner when this process runs in a Pod whose
// IP is ip (or not reported yet), else nil.
func (w *Writer) podOwner(ctx context.Context, ip string) (*metav1.OwnerReference, error) {
	if w.wl.PodName == "" {
		return nil, nil
	}
	if w.pod == nil {
		pod, err := w.dyn.Resource(Pods).Namespace(w.wl.Namespace).Get(ctx, w.wl.PodName, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			w.wl.PodName = "" // not a Pod: a process with a pod-like name
			return nil, nil
		}
		if err != nil {
			return nil, w.apiErr("read Pod "+w.wl.PodName, err)
		}
		// A Pod's IP is reported once its containers run, which may be
		// after this process registers: no IP yet still means this Pod.
		podIP, _, _ := unstructured.NestedString(pod.Object, "status", "podIP")
		if podIP != "" && podIP != ip {
			w.log.Info("the registered address is not the Pod's IP; registering a WorkloadEntry", "pod", w.wl.PodName, "podIP", podIP, "address", ip)
			return nil, nil
		}
		if pod.GetLabels()["app"] != w.wl.App {
			w.log.Warn("the Pod lacks the label the ServiceEntry selects; istiod will not serve it", "pod", w.wl.PodName, "want", "app="+w.wl.App)
		}
		w.pod = ownerOf(pod)
	}
	return w.pod, nil
}

func ownerOf(obj *unstructured.Unstructured) *metav1.OwnerReference {
	return &metav1.OwnerReference{APIVersion: obj.GetAPIVersion(), Kind: obj.GetKind(), Name: obj.GetName(), UID: obj.GetUID()}
}

func (w *Writer) applyWorkloadEntry(ctx context.Context, inst registry.Instance, ip string, port uint32) (*metav1.OwnerReference, error) {
	labels := map[string]any{}
	for k, v := range w.wl.Labels {
		labels[k] = v
	}
	for k, v := range inst.Labels {
		if len(validation.IsQualifiedName(k)) > 0 || len(validation.IsValidLabelValue(v)) > 0 {
			w.log.Warn("instance label is not a Kubernetes label; left out of the WorkloadEntry", "key", k, "value", v)
			continue
		}
		labels[k] = v
	}
	if v := inst.Version; v != "" && len(validation.IsValidLabelValue(v)) == 0 {
		if _, ok := labels["version"]; !ok {
			labels["version"] = v
		}
	}
	labels["app"] = w.wl.App
	name := w.WorkloadEntryName(inst.Address)
	obj := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "networking.istio.io/v1",
		"kind":       "WorkloadEntry",
		"metadata": map[string]any{
			"name":      name,
			"namespace": w.wl.Namespace,
			"labels":    map[string]any{mapping.ManagedByLabel: "shoal", "app": w.wl.App},
		},
		"spec": map[string]any{
			"address": ip,
			"ports":   map[string]any{PortName: int64(port)},
			"labels":  labels,
		},
	}}
	got, err := w.dyn.Resource(WorkloadEntries).Namespace(w.wl.Namespace).Apply(ctx, name, obj, metav1.ApplyOptions{FieldManager: FieldManager, Force: true})
	if err != nil {
		return nil, w.apiErr("apply WorkloadEntry "+name, err)
	}
	w.log.Info("WorkloadEntry applied", "name", name, "address", ip, "port", port)
	return ownerOf(got), nil
}

// updateServiceEntry changes owner's hosts with edit and writes the entry
// back: created when missing, deleted when no owner is left. It returns
// how many hosts owner still has. Conflicts with other replicas are
// retried on the fresh object.
func (w *Writer) updateServiceEntry(ctx context.Context, port uint32, owner metav1.OwnerReference, edit func([]string) []string) (int, error) {
	res := w.dyn.Resource(ServiceEntries).Namespace(w.wl.Namespace)
	name := w.ServiceEntryName()
	var last error
	for attempt := range w.cfg.attempts {
		if attempt > 0 {
			t := time.NewTimer(time.Duration(attempt) * 10 * time.Millisecond)
			select {
			case <-ctx.Done():
				t.Stop()
				return 0, errors.Join(ctx.Err(), last)
			case <-t.C:
			}
		}
		cur, err := res.Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			hosts := edit(nil)
			if len(hosts) == 0 {
				return 0, nil // nothing registered, nothing to remove
			}
			obj, err := w.newServiceEntry(port, owner, hosts)
			if err != nil {
				return 0, err
			}
			if _, err := res.Create(ctx, obj, metav1.CreateOptions{FieldManager: FieldManager}); err != nil {
				if apierrors.IsAlreadyExists(err) {
					last = err
					continue
				}
				return 0, w.apiErr("create ServiceEntry "+name, err)
			}
			w.log.Info("ServiceEntry created", "name", name, "hosts", hosts)
			return len(hosts), nil
		}
		if err != nil {
			return 0, w.apiErr("read ServiceEntry "+name, err)
		}
		if cur.GetLabels()[ModeLabel] != ModeDynamic {
			w.log.Info("ServiceEntry is pre-declared (GitOps); left as it is", "name", name)
			return 0, nil
		}
		owners, shares := ownership(cur)
		mine := edit(shares[owner.UID])
		if len(mine) == 0 {
			delete(shares, owner.UID)
			owners = slices.DeleteFunc(owners, func(o metav1.OwnerReference) bool { return o.UID == owner.UID })
		} else {
			shares[owner.UID] = mine
			if !slices.ContainsFunc(owners, func(o metav1.OwnerReference) bool { return o.UID == owner.UID }) {
				owners = append(owners, owner)
			}
		}
		if len(owners) == 0 {
			rv, uid := cur.GetResourceVersion(), cur.GetUID()
			err := res.Delete(ctx, name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid, ResourceVersion: &rv}})
			if apierrors.IsConflict(err) {
				last = err
				continue
			}
			if err != nil && !apierrors.IsNotFound(err) {
				return 0, w.apiErr("delete ServiceEntry "+name, err)
			}
			w.log.Info("ServiceEntry deleted: its last owner left", "name", name)
			return 0, nil
		}
		if err := setOwnership(cur, owners, shares, port); err != nil {
			return 0, err
		}
		if _, err := res.Update(ctx, cur, metav1.UpdateOptions{FieldManager: FieldManager}); err != nil {
			if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
				last = err
				continue
			}
			return 0, w.apiErr("update ServiceEntry "+name, err)
		}
		return len(mine), nil
	}
	return 0, fmt.Errorf("registry-istio: ServiceEntry %s/%s kept changing under %d attempts: %w", w.wl.Namespace, name, w.cfg.attempts, last)
}

// ownership reads the owners of a dynamic ServiceEntry and each one's
// hosts; shares of owners no longer referenced (removed by the garbage
// collector) are dropped.
func ownership(se *unstructured.Unstructured) ([]metav1.OwnerReference, map[types.UID][]string) {
	owners := se.GetOwnerReferences()
	shares := map[types.UID][]string{}
	for k, v := range se.GetAnnotations() {
		uid, ok := strings.CutPrefix(k, HostsAnnotationPrefix)
		if !ok || !slices.ContainsFunc(owners, func(o metav1.OwnerReference) bool { return string(o.UID) == uid }) {
			continue
		}
		if v != "" {
			shares[types.UID(uid)] = strings.Split(v, ",")
		}
	}
	return owners, shares
}

// setOwnership writes owners, their shares and the union of their hosts.
func setOwnership(se *unstructured.Unstructured, owners []metav1.OwnerReference, shares map[types.UID][]string, port uint32) error {
	ann := se.GetAnnotations()
	for k := range ann {
		if strings.HasPrefix(k, HostsAnnotationPrefix) {
			delete(ann, k)
		}
	}
	if ann == nil {
		ann = map[string]string{}
	}
	var all []string
	for uid, hosts := range shares {
		ann[HostsAnnotationPrefix+string(uid)] = strings.Join(hosts, ",")
		all = append(all, hosts...)
	}
	slices.Sort(all)
	all = slices.Compact(all)
	se.SetAnnotations(ann)
	se.SetOwnerReferences(owners)
	hosts := make([]any, len(all))
	for i, h := range all {
		hosts[i] = h
	}
	if err := unstructured.SetNestedSlice(se.Object, hosts, "spec", "hosts"); err != nil {
		return fmt.Errorf("registry-istio: ServiceEntry %s: spec.hosts: %w", se.GetName(), err)
	}
	ports, _, _ := unstructured.NestedSlice(se.Object, "spec", "ports")
	for i, p := range ports {
		if pm, ok := p.(map[string]any); ok && pm["name"] == PortName {
			pm["targetPort"] = int64(port)
			ports[i] = pm
		}
	}
	return unstructured.SetNestedSlice(se.Object, ports, "spec", "ports")
}

func (w *Writer) newServiceEntry(port uint32, owner metav1.OwnerReference, hosts []string) (*unstructured.Unstructured, error) {
	name, spec, err := w.cfg.scheme.ServiceEntry(mapping.Application{
		Name: w.wl.App, Namespace: w.wl.Namespace, TargetPort: port,
		Interfaces: []registry.Key{{Interface: "placeholder"}}, // hosts are set below
	})
	if err != nil {
		return nil, err
	}
	b, err := protojson.Marshal(spec)
	if err != nil {
		return nil, fmt.Errorf("registry-istio: encode ServiceEntry %s: %w", name, err)
	}
	var specMap map[string]any
	if err := json.Unmarshal(b, &specMap); err != nil {
		return nil, fmt.Errorf("registry-istio: encode ServiceEntry %s: %w", name, err)
	}
	se := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "networking.istio.io/v1",
		"kind":       "ServiceEntry",
		"spec":       specMap,
	}}
	se.SetName(name)
	se.SetNamespace(w.wl.Namespace)
	se.SetLabels(map[string]string{mapping.ManagedByLabel: "shoal", "app": w.wl.App, ModeLabel: ModeDynamic})
	if err := setOwnership(se, []metav1.OwnerReference{owner}, map[types.UID][]string{owner.UID: hosts}, port); err != nil {
		return nil, err
	}
	return se, nil
}

func (w *Writer) apiErr(what string, err error) error {
	if apierrors.IsForbidden(err) {
		return fmt.Errorf("registry-istio: %s in namespace %s: %w; grant the workload's service account create/get/update/delete on "+
			"serviceentries and workloadentries (networking.istio.io) and get on pods there, or turn dynamic registration off "+
			"(registry param publish: false) and apply the ServiceEntry from the chart", what, w.wl.Namespace, err)
	}
	return fmt.Errorf("registry-istio: %s in namespace %s: %w", what, w.wl.Namespace, err)
}

func addHost(hosts []string, h string) []string {
	if slices.Contains(hosts, h) {
		return hosts
	}
	hosts = append(hosts, h)
	slices.Sort(hosts)
	return hosts
}

func splitAddress(addr string) (string, uint32, error) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("registry-istio: address %q: %w", addr, err)
	}
	if net.ParseIP(h) == nil {
		return "", 0, fmt.Errorf("registry-istio: address %q: a WorkloadEntry needs an IP address, not %q; advertise the workload's IP", addr, h)
	}
	n, err := strconv.ParseUint(p, 10, 16)
	if err != nil || n == 0 {
		return "", 0, fmt.Errorf("registry-istio: address %q: port is not 1-65535", addr)
	}
	return h, uint32(n), nil
}
