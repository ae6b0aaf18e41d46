// Package cluster holds Shoal's one retry loop, [Strategy]: what happens
// when a try on one endpoint fails. [Failfast] tries once. [Failover]
// tries again on another endpoint, up to a number of retries, only for
// failures its RetryOn accepts (by default: connect failures and
// UNAVAILABLE), with mesh.Backoff's jittered exponential wait and an
// optional per-try timeout. [FromRetryPolicy] builds the strategy a mesh
// route's retry policy asks for. The consumer's default engine
// (router.Service) and router-mesh's routes both run their calls through
// it, with engine-specific bookkeeping behind the optional [TryObserver]
// and [RetryLimiter] of a [Target].
//
// Unary calls go through [Strategy.Invoke]. Streams go through
// [Strategy.NewStream], retried as grpc-go retries them: only while the
// provider has not answered, replaying up to [DefaultStreamBuffer] bytes
// of sent messages.
//
// [Deadline] turns a per-call timeout into the call.Info.Deadline the loop
// respects; [WithTimeout] applies one as a context instead.
//
// The loop is pure logic over a picker and an invoker or stream opener, so
// it is tested without a network and reused by any transport.
package cluster
