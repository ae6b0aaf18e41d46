// Package balancer spreads calls over a cluster's endpoints, in grpc-go's
// shape: a named [Builder] makes a [Balancer] per cluster; on every change of
// the cluster's endpoints the Balancer builds a new immutable [Picker]; a
// [Handle] swaps pickers atomically, so state updates never block calls and
// a call never sees a half-updated state.
//
// Four balancers ship with the package and are in [Default]: RoundRobin
// (weighted, smooth), Random (weighted), LeastRequest (power of two choices
// over in-flight counts) and RingHash (consistent hashing on a header or
// attachment). Randomness comes from the runtime's fast source, or from a
// math/rand/v2 PCG when [WithSeed] makes a balancer deterministic for tests.
//
// Applications add their own balancers to a [Registry] of their own, or to
// [Default] with [Register].
package balancer
