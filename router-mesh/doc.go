// Package routermesh applies Istio traffic management in-process: it executes
// the neutral route model of the sdk module (filled from VirtualService and
// DestinationRule by registry-istio) with route matching, weighted subsets,
// timeouts, retries, fault injection, load balancing and outlier detection,
// as an Envoy sidecar would, without the sidecar.
package routermesh
