// Package tracing records OpenTelemetry spans for Shoal calls, following
// OpenTelemetry's RPC semantic conventions (span name "Service/Method",
// rpc.system "grpc", rpc.service, rpc.method, rpc.grpc.status_code), and
// carries the trace across calls in W3C Trace Context headers
// (traceparent, tracestate) by default, or with any
// propagation.TextMapPropagator.
//
// The client side ([Tracing.ClientOptions], triple client interceptors
// for tri.NewTransport) starts a client span per attempt, a child of the
// span in the caller's context, and sends its context with the call. The
// server side ([Tracing.ServerFilter], an sdk server filter) continues
// the caller's trace with a server span and hands it to the handler in
// its context. Tracing is off unless these are installed; exporting
// (OTLP, sampling) is the TracerProvider's business.
package tracing
