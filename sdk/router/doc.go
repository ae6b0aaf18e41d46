// Package router holds the one seam through which every call of a
// consumer goes: an [Engine] runs unary calls and opens streams of all
// three kinds against the current mesh snapshot — choosing the
// destination, balancing over its endpoints and retrying through
// sdk/cluster's one retry loop.
//
// The sdk ships [Service], the trivial engine ("router: service"): every
// call goes to the called service's cluster as a whole, routes are
// ignored, and the reference's balancer and cluster strategy apply.
// router-mesh implements Istio's semantics (matches, weighted subsets,
// faults, timeouts, mirrors, circuit breakers, outlier detection) as the
// engine "mesh". Applications choose one by name from [Engines].
package router
