// Package authz evaluates the RBAC policies istiod derives from
// AuthorizationPolicies for a proxyless server (gRFC A41 semantics): the
// RBAC HTTP filters of the inbound listener, in order, each ALLOW filter
// requiring a matching policy and each DENY filter refusing one.
//
// It works on xdsresource's validated, Envoy-free models; an Engine is
// immutable, so a server swaps in a new one atomically when istiod pushes a
// change while calls are being checked against the old one.
package authz
