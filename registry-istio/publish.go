package registryistio

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/util/retry"

	"github.com/shoalmesh/shoal/registry-istio/mapping"
)

// ManagedByLabel marks the ServiceEntries a Publisher writes; it never
// touches one without it (those are declared, e.g. by the CLI's chart).
const ManagedByLabel = "app.kubernetes.io/managed-by"

const managedBy = "shoal"

var serviceEntries = schema.GroupVersionResource{Group: "networking.istio.io", Version: "v1", Resource: "serviceentries"}

// Publisher writes a provider application's interface mapping (its
// ServiceEntry, see mapping.Scheme.ServiceEntry) to the Kubernetes API
// server at start and withdraws it at stop. Every replica of an application
// shares one ServiceEntry: each adds its interfaces' hosts and its Pod as an
// owner; when a replica leaves it removes itself, and the last one deletes
// the entry. A replica that dies without withdrawing is removed by
// Kubernetes' garbage collector when its Pod goes, so a crash never leaves
// the mapping behind.
type Publisher struct {
	dyn       dynamic.Interface
	kube      kubernetes.Interface
	scheme    mapping.Scheme
	namespace string
	pod       string
	logger    *slog.Logger
}

// NewPublisher returns a publisher acting as Pod pod in namespace through
// the API server cfg names.
func NewPublisher(cfg *rest.Config, namespace, pod string, scheme mapping.Scheme, logger *slog.Logger) (*Publisher, error) {
	if namespace == "" {
		return nil, errors.New("registry-istio: publishing needs the namespace (POD_NAMESPACE)")
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.Default()
	}
	return &Publisher{dyn: dyn, kube: kube, scheme: scheme, namespace: namespace, pod: pod, logger: logger}, nil
}

// KubeConfig finds the API server as client-go does: KUBECONFIG, else the
// in-cluster service account. It returns nil, nil when there is neither.
func KubeConfig() (*rest.Config, error) {
	if path := os.Getenv("KUBECONFIG"); path != "" {
		cfg, err := clientcmd.BuildConfigFromFlags("", path)
		if err != nil {
			return nil, fmt.Errorf("registry-istio: KUBECONFIG=%s: %w", path, err)
		}
		return cfg, nil
	}
	if os.Getenv("KUBERNETES_SERVICE_HOST") == "" {
		return nil, nil //nolint:nilnil // "no Kubernetes here" is not an error
	}
	cfg, err := rest.InClusterConfig()
	if err != nil {
		return nil, fmt.Errorf("registry-istio: in-cluster Kubernetes config: %w", err)
	}
	return cfg, nil
}

// Publish makes the application's ServiceEntry carry app's interfaces and
// name this replica's Pod as an owner.
func (p *Publisher) Publish(ctx context.Context, app mapping.Application) error {
	app.Namespace = p.namespace
	name, spec, err := p.scheme.ServiceEntry(app)
	if err != nil {
		return err
	}
	owner, err := p.ownerRef(ctx)
	if err != nil {
		return err
	}
	manifest, err := p.scheme.Manifest(app) // protojson: enums as names, as the CRD wants
	if err != nil {
		return err
	}
	var desired unstructured.Unstructured
	if err := desired.UnmarshalJSON(manifest); err != nil {
		return fmt.Errorf("registry-istio: ServiceEntry %s: %w", name, err)
	}
	specMap, _, _ := unstructured.NestedMap(desired.Object, "spec")
	res := p.dyn.Resource(serviceEntries).Namespace(p.namespace)
	return retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		cur, err := res.Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			obj := &unstructured.Unstructured{Object: map[string]any{
				"apiVersion": "networking.istio.io/v1", "kind": "ServiceEntry",
				"metadata": map[string]any{"name": name, "namespace": p.namespace, "labels": map[string]any{ManagedByLabel: managedBy}},
				"spec":     specMap,
			}}
			if owner != nil {
				obj.SetOwnerReferences([]metav1.OwnerReference{*owner})
			}
			_, err = res.Create(ctx, obj, metav1.CreateOptions{FieldManager: managedBy})
			if err == nil {
				p.logger.Info("published the interface mapping", "serviceentry", name, "hosts", spec.GetHosts())
			}
			if apierrors.IsAlreadyExists(err) {
				return apierrors.NewConflict(serviceEntries.GroupResource(), name, err) // created meanwhile: merge into it
			}
			return err
		}
		if err != nil {
			return fmt.Errorf("registry-istio: get ServiceEntry %s/%s: %w", p.namespace, name, err)
		}
		if cur.GetLabels()[ManagedByLabel] != managedBy {
			return fmt.Errorf("registry-istio: ServiceEntry %s/%s exists and is not managed by Shoal (label %s=%s); declare its hosts there or remove it",
				p.namespace, name, ManagedByLabel, managedBy)
		}
		hosts, _, _ := unstructured.NestedStringSlice(cur.Object, "spec", "hosts")
		merged := append(slices.Clone(hosts), spec.GetHosts()...)
		slices.Sort(merged)
		merged = slices.Compact(merged)
		changed := !slices.Equal(merged, hosts)
		if changed {
			if err := unstructured.SetNestedStringSlice(cur.Object, merged, "spec", "hosts"); err != nil {
				return err
			}
		}
		if owner != nil && !hasOwner(cur, owner.UID) {
			cur.SetOwnerReferences(append(cur.GetOwnerReferences(), *owner))
			changed = true
		}
		if !changed {
			return nil
		}
		_, err = res.Update(ctx, cur, metav1.UpdateOptions{FieldManager: managedBy})
		if err == nil {
			p.logger.Info("joined the interface mapping", "serviceentry", name, "hosts", merged)
		}
		return err
	})
}

// Withdraw removes this replica from the application's ServiceEntry and
// deletes the entry when no replica is left.
func (p *Publisher) Withdraw(ctx context.Context, app mapping.Application) error {
	app.Namespace = p.namespace
	name, _, err := p.scheme.ServiceEntry(app)
	if err != nil {
		return err
	}
	owner, err := p.ownerRef(ctx)
	if err != nil && !apierrors.IsNotFound(errors.Unwrap(err)) {
		return err
	}
	res := p.dyn.Resource(serviceEntries).Namespace(p.namespace)
	return retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		cur, err := res.Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("registry-istio: get ServiceEntry %s/%s: %w", p.namespace, name, err)
		}
		if cur.GetLabels()[ManagedByLabel] != managedBy {
			return nil // declared, not ours
		}
		var rest []metav1.OwnerReference
		for _, o := range cur.GetOwnerReferences() {
			if owner == nil || o.UID != owner.UID {
				rest = append(rest, o)
			}
		}
		if len(rest) == 0 {
			rv := cur.GetResourceVersion()
			err := res.Delete(ctx, name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{ResourceVersion: &rv}})
			if err == nil || apierrors.IsNotFound(err) {
				p.logger.Info("withdrew the interface mapping (last replica)", "serviceentry", name)
				return nil
			}
			return err
		}
		cur.SetOwnerReferences(rest)
		_, err = res.Update(ctx, cur, metav1.UpdateOptions{FieldManager: managedBy})
		if err == nil {
			p.logger.Info("left the interface mapping; other replicas remain", "serviceentry", name, "replicas", len(rest))
		}
		return err
	})
}

// ownerRef is this replica's Pod as an owner, or nil when it runs outside
// a Pod (the entry then lives until the last replica withdraws).
func (p *Publisher) ownerRef(ctx context.Context) (*metav1.OwnerReference, error) {
	if p.pod == "" {
		return nil, nil //nolint:nilnil // no Pod, no owner
	}
	pod, err := p.kube.CoreV1().Pods(p.namespace).Get(ctx, p.pod, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		p.logger.Warn("no Pod object for this workload; the mapping will not be garbage collected if it crashes", "pod", p.pod, "namespace", p.namespace)
		return nil, nil //nolint:nilnil // not a Pod (a VM with a WorkloadEntry)
	}
	if err != nil {
		return nil, fmt.Errorf("registry-istio: get Pod %s/%s: %w", p.namespace, p.pod, err)
	}
	return &metav1.OwnerReference{APIVersion: "v1", Kind: "Pod", Name: pod.Name, UID: pod.UID}, nil
}

func hasOwner(o *unstructured.Unstructured, uid types.UID) bool {
	for _, r := range o.GetOwnerReferences() {
		if r.UID == uid {
			return true
		}
	}
	return false
}
