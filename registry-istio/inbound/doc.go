// Package inbound makes a Triple server follow what istiod says about its
// serving address: it watches the server-side listener
// `xds.istio.io/grpc/lds/inbound/<ip>:<port>` (what grpc-go's xDS server
// asks for) and applies it live.
//
//   - PeerAuthentication STRICT (a filter chain with a DownstreamTlsContext
//     requiring client certificates): new connections must complete mutual
//     TLS with a certificate chained to the mesh root; the server presents
//     the workload certificate of an identity.Source. Calls on connections
//     accepted as plaintext before the change are refused.
//   - PERMISSIVE or no policy (a plaintext chain, as istiod sends to
//     proxyless servers): plaintext connections.
//   - AuthorizationPolicy (the RBAC filters): every call is checked by
//     package authz; a refused call ends with PERMISSION_DENIED naming the
//     policy. A new policy is swapped in atomically: calls already running
//     are not interrupted.
//   - No listener for the address (istiod knows no service for it), or a
//     first version this client cannot enforce (NACKed): the server is not
//     serving, and closes the connections it accepts, as grpc-go's xDS
//     server does. A later NACKed version keeps the last good one.
//
// Guard.Listen wraps a bound listener; Guard.UnaryServerInterceptor and
// Guard.StreamServerInterceptor check the calls. Give both to the Triple
// server (tri.Servers.WrapListeners and triple.With*Interceptors in an
// sdk app).
package inbound
