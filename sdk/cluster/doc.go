// Package cluster holds the cluster strategies: what a consumer does when a
// call to one endpoint fails. [Failfast] tries once. [Failover] tries again
// on another endpoint, up to a number of retries, only for failures its
// RetryOn accepts (by default: connect failures and UNAVAILABLE), with a
// jittered exponential backoff and an optional per-try timeout.
// [FromRetryPolicy] builds the failover a mesh route's retry policy asks
// for. [Deadline] turns a per-call timeout into the call.Info.Deadline the
// strategies respect; [WithTimeout] applies one as a context instead.
//
// Strategies are pure logic over two functions — pick an endpoint, invoke
// it — so they are tested without a network and reused by any transport.
package cluster
