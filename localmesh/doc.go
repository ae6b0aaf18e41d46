// Package localmesh runs a real Istio control plane on this machine for
// tests, the demo and `shoal dev`: etcd, kube-apiserver and
// kube-controller-manager (built from k8s.io/kubernetes) and one or more
// istiod replicas (pilot-discovery built from istio.io/istio), all on free
// loopback ports, with generated certificates, a token and a kubeconfig.
//
// The binaries come from scripts/controlplane.sh, which builds them once per
// machine into ${XDG_CACHE_HOME:-~/.cache}/shoal/controlplane. Start waits for
// real readiness: the API server's /readyz and an answer from each istiod on
// an ADS stream, never a sleep.
//
// Nothing is faked: there is no kubelet, so Pods never run. Workloads join
// the mesh as WorkloadEntries (which accept loopback addresses), or as Pods
// whose status a caller reports (the containers subpackage, when it lands).
package localmesh
