package localmesh

import (
	"context"
	"fmt"
	"time"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// Client applies and deletes objects, creates ServiceAccounts, mints their
// tokens and reads the mesh's root certificate on the API server of a mesh
// that another process runs (such as the one `shoal dev up` keeps), found
// through its kubeconfig.
type Client struct {
	applier *applier
	kube    kubernetes.Interface
}

// NewClient returns a Client of the API server named by the kubeconfig at
// path (Mesh.Kubeconfig).
func NewClient(kubeconfig string) (*Client, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("localmesh: kubeconfig %s: %w", kubeconfig, err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("localmesh: %w", err)
	}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("localmesh: %w", err)
	}
	return &Client{applier: newApplier(cfg, dyn), kube: kube}, nil
}

// Apply creates or updates the objects of a YAML stream (server-side
// apply), like kubectl apply -f.
func (c *Client) Apply(ctx context.Context, yaml []byte) error { return c.applier.apply(ctx, yaml) }

// Delete deletes the objects of a YAML stream, like kubectl delete -f; it
// tries every object and returns the errors of those it could not delete
// (apierrors.IsNotFound tells a missing one).
func (c *Client) Delete(ctx context.Context, yaml []byte) error { return c.applier.delete(ctx, yaml) }

// CreateServiceAccount creates the ServiceAccount ns/name (and its
// namespace), as Mesh.CreateServiceAccount does.
func (c *Client) CreateServiceAccount(ctx context.Context, ns, name string) error {
	return createServiceAccount(ctx, c.kube, ns, name)
}

// ServiceAccountToken mints a token of the ServiceAccount ns/name through
// the TokenRequest API, as Mesh.ServiceAccountToken does.
func (c *Client) ServiceAccountToken(ctx context.Context, ns, name, audience string, ttl time.Duration) (string, error) {
	return serviceAccountToken(ctx, c.kube, ns, name, audience, ttl)
}

// RootCert returns the mesh's root certificate (PEM) from the
// istio-ca-root-cert ConfigMap of namespace ns, as Mesh.RootCert does.
func (c *Client) RootCert(ctx context.Context, ns string) ([]byte, error) {
	return rootCert(ctx, c.kube, ns)
}
