package localmesh

import (
	"context"
	"fmt"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/clientcmd"
)

// Client applies and deletes objects on the API server of a mesh that
// another process runs (such as the one `shoal dev up` keeps), found
// through its kubeconfig.
type Client struct {
	applier *applier
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
	return &Client{applier: newApplier(cfg, dyn)}, nil
}

// Apply creates or updates the objects of a YAML stream (server-side
// apply), like kubectl apply -f.
func (c *Client) Apply(ctx context.Context, yaml []byte) error { return c.applier.apply(ctx, yaml) }

// Delete deletes the objects of a YAML stream, like kubectl delete -f; it
// tries every object and returns the errors of those it could not delete
// (apierrors.IsNotFound tells a missing one).
func (c *Client) Delete(ctx context.Context, yaml []byte) error { return c.applier.delete(ctx, yaml) }
