// Package localmesh runs a real Istio control plane on this machine for
// tests, the demo and `shoal dev`: etcd, kube-apiserver and
// kube-controller-manager (built from k8s.io/kubernetes) and one or more
// istiod replicas (pilot-discovery built from istio.io/istio), all on free
// loopback ports, with generated certificates, a token and a kubeconfig.
//
// The binaries come from package controlplane (its Builder, run by
// `shoal dev up`, cmd/shoal-controlplane and scripts/controlplane.sh), which
// builds them once per machine, from modules pinned inside it, into
// ${XDG_CACHE_HOME:-~/.cache}/shoal/controlplane. Start waits for
// real readiness: the API server's /readyz and an answer from each istiod on
// an ADS stream, never a sleep.
//
// Workloads run as containers (Engine, over the Docker API via
// testcontainers-go: podman here, Docker elsewhere), built locally FROM
// scratch, and join as Pods (RunWorkload). There is no kubelet: the harness
// reports each container's state into its Pod's status, the only part of
// Kubernetes it stands in for; EndpointSlices and EDS come from the real
// controller-manager and istiod. Loopback workloads can join as
// WorkloadEntries instead.
//
// SHOAL_IMAGES=public (WithImageSource(PublicImages)) instead runs istiod
// as a container of PublicIstiodImage and builds Java images FROM
// PublicJavaBase, pulled by the engine; etcd and the Kubernetes parts
// still come from controlplane.Builder. A public image the engine
// neither has nor can pull fails Start or BuildJavaImage at once with
// ErrImageUnavailable.
package localmesh
