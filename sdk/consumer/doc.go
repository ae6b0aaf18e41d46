// Package consumer calls a service by interface name: a [Reference] watches
// the service through a registry.Discovery and sends every call, unary or
// stream, inside a client filter chain, through one router.Engine — the
// trivial router.Service (the service's cluster, a balancer, a
// cluster.Strategy; failover by default) or router-mesh's Istio engine —
// which picks endpoints and retries; each try goes over a per-endpoint
// [Conn] made by a [Transport]. A unary call's timeout is the route's, or
// the reference's where the route sets none.
//
// The call path takes no lock: discovery updates build a new state
// (connections by endpoint, then the engine's balancer pickers) off the
// call path and swap it in atomically. Connections are dialled on first use; when an endpoint
// leaves, its connection stays usable for a grace period (WithRetireGrace)
// and then closes once its last in-flight call ends, so a provider that
// deregisters before stopping loses no call.
//
// The Transport is the seam to the wire protocol: the Triple adapter
// implements it over triple's client; tests use an in-memory one. A
// cluster whose policy asks for TLS (mesh.ClusterPolicy.TLS) is dialled
// through a [TLSTransport], never in plaintext; a change of that TLS dials
// the endpoint anew.
package consumer
