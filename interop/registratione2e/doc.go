// Package registratione2e holds the end-to-end tests of registry-istio's
// dynamic registration against a real control plane (localmesh: etcd,
// kube-apiserver, kube-controller-manager, two istiod replicas): providers
// are Go processes serving Triple on 127.0.0.x that register their
// interfaces through the Kubernetes API at start (a shared ServiceEntry,
// one WorkloadEntry each) and remove them when they stop; consumers name
// only the interface, or the host target, and keep calling while istiod is
// down; grpc-go's own xDS client calls the same providers.
//
// Providers are started through a launcher: today a child process (this
// test binary in provider mode, configured only by environment variables,
// as a container would be), later a container of localmesh's harness.
package registratione2e
