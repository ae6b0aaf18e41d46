// Package istiofx wires registry-istio into a go.uber.org/fx application:
// Module provides the istiod-backed sdk registry (*registryistio.Registry,
// also as registry.Registry named "istio") and its ADS client
// (*xdsclient.Client, for Status).
//
// The bootstrap comes from a *bootstrap.Config in the graph when there is
// one, otherwise from the environment (bootstrap.Load). Nothing connects at
// start: the client opens its stream on the first watch. OnStop closes it.
package istiofx
