// Package registryistio connects Shoal applications straight to istiod over
// xDS (ADS): it discovers services by interface name, registers providers, and
// translates Envoy and Istio resources into the neutral route and endpoint
// model of the sdk module. It is the only Shoal module that imports Envoy or
// Istio types.
package registryistio
