// Package router chooses where a call goes: given the call and the current
// mesh snapshot, a [Router] returns the destination cluster and the route
// whose policy (timeout, retries, faults, mirrors) applies.
//
// The sdk ships [Service], a trivial router that sends every call to the
// called service as a whole and ignores routes. router-mesh implements
// Istio's semantics (matches, weighted subsets, policies) behind the same
// interface; applications choose a router by name from a [Registry].
package router
