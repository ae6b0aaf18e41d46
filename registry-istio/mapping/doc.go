// Package mapping is the interface-name-to-host convention Shoal uses on
// Istio: every interface (and group) a provider serves is a host of a
// ServiceEntry that selects the provider's workloads, and a consumer derives
// that host from the interface name alone, with no lookup.
//
//	greet.GreetService            -> greet.greetservice.default.shoal.local:50051
//	greet.GreetService, group blue -> greet.greetservice.blue.shoal.local:50051
//
// The label just before the domain is always the group ("default" when the
// group is empty), so two names can never produce the same host. The version
// is not part of the host: it is an endpoint label (version: v2), selected by
// DestinationRule subsets.
//
// App-level references name the providing application instead (a key's
// ProvidedBy, Dubbo's providedBy) and resolve to its Kubernetes Service:
//
//	providedBy greeter                -> greeter.<consumer's namespace>.svc.cluster.local:50051
//	providedBy greeter.shop:20000     -> greeter.shop.svc.cluster.local:20000
//
// ServiceEntry and Manifest render the ServiceEntry for an application, for
// the CLI's chart (GitOps) and for registration at start.
package mapping
