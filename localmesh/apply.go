package localmesh

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
)

// applier does what kubectl apply -f does for a YAML stream: server-side
// apply of every document, mapping kinds to resources through discovery.
type applier struct {
	dyn    dynamic.Interface
	mapper *restmapper.DeferredDiscoveryRESTMapper
}

func newApplier(cfg *rest.Config, dyn dynamic.Interface) *applier {
	dc := discovery.NewDiscoveryClientForConfigOrDie(cfg)
	return &applier{dyn: dyn, mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))}
}

func (a *applier) apply(ctx context.Context, data []byte) error {
	return a.each(data, func(obj *unstructured.Unstructured) error {
		if err := a.applyOne(ctx, obj); err != nil {
			return fmt.Errorf("localmesh: apply %s %s/%s: %w", obj.GetKind(), obj.GetNamespace(), obj.GetName(), err)
		}
		return nil
	})
}

// delete deletes the objects of a YAML stream, like kubectl delete -f: it
// goes on past an object it cannot delete (one that does not exist, say)
// and returns every such error.
func (a *applier) delete(ctx context.Context, data []byte) error {
	var errs []error
	err := a.each(data, func(obj *unstructured.Unstructured) error {
		ri, err := a.resource(obj)
		if err == nil {
			policy := metav1.DeletePropagationBackground
			err = ri.Delete(ctx, obj.GetName(), metav1.DeleteOptions{PropagationPolicy: &policy})
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("localmesh: delete %s %s/%s: %w", obj.GetKind(), obj.GetNamespace(), obj.GetName(), err))
		}
		return nil
	})
	return errors.Join(append(errs, err)...)
}

// each decodes a YAML or JSON stream and calls f for every object in it,
// stopping at the first error.
func (a *applier) each(data []byte, f func(*unstructured.Unstructured) error) error {
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	for n := 0; ; n++ {
		var obj unstructured.Unstructured
		if err := dec.Decode(&obj.Object); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("localmesh: document %d: %w", n, err)
		}
		if len(obj.Object) == 0 {
			continue
		}
		if err := f(&obj); err != nil {
			return err
		}
	}
}

func (a *applier) applyOne(ctx context.Context, obj *unstructured.Unstructured) error {
	ri, err := a.resource(obj)
	if err != nil {
		return err
	}
	_, err = ri.Apply(ctx, obj.GetName(), obj, metav1.ApplyOptions{FieldManager: "localmesh", Force: true})
	return err
}

// resource is the API of obj's kind, in its namespace ("default" if it has
// none and the kind is namespaced).
func (a *applier) resource(obj *unstructured.Unstructured) (dynamic.ResourceInterface, error) {
	gvk := obj.GroupVersionKind()
	mapping, err := a.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		// A CRD created moments ago: refresh discovery once.
		a.mapper.Reset()
		if mapping, err = a.mapper.RESTMapping(gvk.GroupKind(), gvk.Version); err != nil {
			return nil, err
		}
	}
	if mapping.Scope.Name() != meta.RESTScopeNameNamespace {
		return a.dyn.Resource(mapping.Resource), nil
	}
	ns := obj.GetNamespace()
	if ns == "" {
		ns = "default"
		obj.SetNamespace(ns)
	}
	return a.dyn.Resource(mapping.Resource).Namespace(ns), nil
}

var crdGVR = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// installCRDs applies Istio's CRDs and the istio-system namespace, and waits
// until the CRDs the mesh uses are established.
func (m *Mesh) installCRDs(ctx context.Context) error {
	crds, err := os.ReadFile(filepath.Join(m.cfg.dir, "istio-crds.yaml"))
	if err != nil {
		return fmt.Errorf("localmesh: Istio CRDs not found (%w); %s", err, buildHint(m.cfg.images.source))
	}
	if err := m.applier.apply(ctx, crds); err != nil {
		return err
	}
	if err := m.Apply(ctx, "apiVersion: v1\nkind: Namespace\nmetadata: {name: istio-system}\n"); err != nil {
		return err
	}
	for _, name := range []string{
		"virtualservices.networking.istio.io", "destinationrules.networking.istio.io",
		"serviceentries.networking.istio.io", "workloadentries.networking.istio.io",
	} {
		err := waitFor(ctx, "CRD "+name, nil, 100*time.Millisecond, func(ctx context.Context) error {
			u, err := m.dyn.Resource(crdGVR).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
			for _, c := range conds {
				cm, _ := c.(map[string]any)
				if cm["type"] == "Established" && cm["status"] == "True" {
					return nil
				}
			}
			return errNotReady
		})
		if err != nil {
			return err
		}
	}
	m.applier.mapper.Reset()
	return nil
}
