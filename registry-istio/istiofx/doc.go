// Package istiofx wires registry-istio into a go.uber.org/fx application:
// Module provides the ADS client (*xdsclient.Client) and the sdk discovery
// over it (*xdsmesh.Discovery, also as registry.Discovery named "istio").
//
// The bootstrap comes from a *bootstrap.Config in the graph when there is
// one, otherwise from the environment (bootstrap.Load). Nothing connects at
// start: the client opens its stream on the first watch. OnStop closes it.
package istiofx
