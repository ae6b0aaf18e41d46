// Package filter runs user code around every call, in an explicit order:
// authentication, metrics, tracing, rate limiting, logging.
//
// A [Client] filter wraps outgoing calls and a [Server] filter wraps
// incoming ones. Each has a Name and an Order; a chain runs filters by
// ascending Order, the lowest outermost: it sees the call first on the way
// in and last on the way out. Two filters with the same Order are an error,
// so the order never depends on registration order (fx value groups, for
// one, are unordered). A chain built from configuration takes the order of
// the configured list instead.
//
// The invoker and handler types follow grpc-go's interceptor shapes over a
// protocol-neutral [call.Info]; the Triple transport adapts them to its own
// interceptors. Chains are composed once, when built, so a call through N
// pass-through filters costs N function calls and no allocation.
package filter
