package kubestate

import (
	"errors"
	"fmt"
	"os"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// ErrNoKubernetes says that no Kubernetes API server is configured: the
// process runs outside a cluster and KUBECONFIG is not set.
var ErrNoKubernetes = errors.New("registry-istio: no Kubernetes API server: not in a cluster and KUBECONFIG is not set")

// LoadConfig finds the API server as client-go programs do: the given
// kubeconfig file if not empty, else the in-cluster service account when
// running in a Pod, else $KUBECONFIG. It returns ErrNoKubernetes when none
// applies.
func LoadConfig(kubeconfig string) (*rest.Config, error) {
	if kubeconfig == "" && os.Getenv("KUBERNETES_SERVICE_HOST") != "" {
		cfg, err := rest.InClusterConfig()
		if err != nil {
			return nil, fmt.Errorf("registry-istio: in-cluster Kubernetes config: %w", err)
		}
		return cfg, nil
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules() // $KUBECONFIG, a list of files
	if kubeconfig != "" {
		rules.ExplicitPath = kubeconfig
	} else if os.Getenv("KUBECONFIG") == "" {
		return nil, ErrNoKubernetes
	} else {
		kubeconfig = os.Getenv("KUBECONFIG")
	}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, nil).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("registry-istio: kubeconfig %s: %w", kubeconfig, err)
	}
	return cfg, nil
}

// NewForConfig returns a writer through a new client of the API server cfg
// names.
func NewForConfig(cfg *rest.Config, wl Workload, opts ...Option) (*Writer, error) {
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("registry-istio: Kubernetes client: %w", err)
	}
	return New(dyn, wl, opts...)
}
