// Package meshe2e holds the end-to-end tests of Istio traffic management in
// Shoal: a real istiod, kube-apiserver and controller-manager (localmesh),
// Go providers in containers published as Pods, and a Shoal consumer that
// applies VirtualService and DestinationRule rules in-process (router-mesh)
// as it receives them from istiod (registry-istio). The provider they run is
// ../cmd/meshgreeter.
package meshe2e
