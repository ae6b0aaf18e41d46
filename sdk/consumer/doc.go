// Package consumer calls a service by interface name: a [Reference] watches
// the service through a registry.Discovery, routes each call with a
// router.Router, balances it over the chosen cluster with a balancer, runs
// it under a cluster.Strategy (failover by default) and a per-call timeout,
// inside a client filter chain, and sends it over a per-endpoint [Conn]
// made by a [Transport].
//
// The call path takes no lock: discovery updates build a new routing state
// (balancer pickers, connections by endpoint) off the call path and swap it
// in atomically. Connections are dialled on first use; when an endpoint
// leaves, its connection stays usable for a grace period (WithRetireGrace)
// and then closes once its last in-flight call ends, so a provider that
// deregisters before stopping loses no call.
//
// The Transport is the seam to the wire protocol: the Triple adapter
// implements it over triple's client; tests use an in-memory one.
package consumer
