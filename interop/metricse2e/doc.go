// Package metricse2e checks Shoal's Istio metrics end to end: a real istiod,
// kube-apiserver and controller-manager (localmesh), two versions of a Go
// provider (../cmd/meshgreeter with its Istio metrics on) in containers
// published as Pods, a Shoal consumer on the host routing by a
// VirtualService split, and a real Prometheus (Debian's package, started by
// the test on loopback) scraping every application's admin /metrics. What
// PromQL answers is compared with what the test itself counted.
package metricse2e
