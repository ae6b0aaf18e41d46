// Package interop is Shoal's cross-implementation test suite: Shoal against
// grpc-go, dubbo-go, the legacy dubbogo/triple and Java Apache Dubbo, and
// Shoal against a real istiod. The cases are data, runnable by any language.
package interop
