// Package observability is the root of Shoal's observability module:
// Istio's standard request metrics for Shoal calls (package istiometrics),
// the workload identity and Istio's peer metadata exchange they rest on
// (package peer), OpenTelemetry tracing (package tracing), a sampled
// access log (package accesslog), an admin HTTP endpoint with /metrics,
// health and pprof (package admin), and fx wiring (package
// observabilityfx).
//
// The module depends on sdk and triple and never on Envoy or Istio types.
// Other modules can add JSON views to the admin endpoint through
// admin.Server.HandleJSON (registry-istio's xDS status, for one), and a
// gRPC server for CSDS through admin.WithGRPC.
package observability
