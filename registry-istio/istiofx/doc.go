// Package istiofx wires registry-istio into a go.uber.org/fx application:
// Module provides the istiod-backed sdk registry (*registryistio.Registry,
// also as registry.Registry named "istio"), its ADS client
// (*xdsclient.Client, for Status), the workload identity
// (*identity.Source, nil unless a registryistio.Security in the graph asks
// for one) and, in shoalfx's registry builder group, the builder of kind
// "istio" that hands shoalfx's app this same registry. An app whose
// shoal.yaml lists a registry of kind istio then has its servers guarded
// and its transport given the identity by app.New (app.Securer).
//
// The bootstrap comes from a *bootstrap.Config in the graph when there is
// one, otherwise from the environment (bootstrap.Load). Nothing connects at
// start: the client opens its stream on the first watch. OnStop closes it.
package istiofx
