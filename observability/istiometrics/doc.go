// Package istiometrics records Istio's standard request metrics for Shoal
// calls, with the names, labels and histogram buckets of Istio's stats
// filter, so that Istio's Grafana dashboards and Kiali's graph read Shoal
// applications as they read Envoy sidecars.
//
// Six families: istio_requests_total, istio_request_duration_milliseconds,
// istio_request_bytes, istio_response_bytes, istio_request_messages_total
// and istio_response_messages_total, each labelled with reporter,
// source_* and destination_* workload labels, destination_service*,
// request_protocol ("grpc"), response_code, grpc_response_status,
// response_flags and connection_security_policy.
//
// The client side ([Metrics.ClientOptions], triple client interceptors for
// tri.NewTransport) reports reporter="source"; the server side
// ([Metrics.ServerFilter], an sdk server filter) reports
// reporter="destination". Both learn the other side through Istio's
// metadata exchange headers (package peer), so a Shoal consumer calling an
// Envoy-fronted or grpc-go CSM service, and back, fills both sides' labels.
//
// Recording resolves each label set once and caches it per peer and status
// code, so a call costs a few atomic additions; see DESIGN.md for the
// measured cost and the choice of prometheus/client_golang.
package istiometrics
