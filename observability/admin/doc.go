// Package admin serves a Shoal application's admin endpoint on its own
// port, loopback by default: /metrics (Prometheus exposition from a
// prometheus.Gatherer), /healthz (the process serves), /readyz (the
// application is ready: every readiness check passes), /debug/pprof/ and
// JSON views that other modules add with [Server.HandleJSON] (registry-istio
// adds the xDS client status). [WithGRPC] serves a gRPC server on the same
// port over cleartext HTTP/2, for CSDS.
//
// The endpoint exposes profiles and internal state: keep it on loopback
// unless the network it listens on is trusted (Prometheus scraping from
// another pod needs a non-loopback address).
package admin
