// Package provider exports services: it starts the servers that serve them,
// registers one instance per service and server in every registrar, and on
// stop reverses that gracefully: unready, deregister, give consumers time to
// see it, then shut the servers down, letting in-flight calls finish.
//
// A [Server] is the seam to the wire protocol: the Triple adapter
// implements it over triple's server, on which the service implementations
// are mounted before Start. [Provider.Hooks] plugs the provider into a
// lifecycle.Lifecycle (or fx, through shoalfx).
package provider
