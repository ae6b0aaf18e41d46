// Package tracing records OpenTelemetry spans for Shoal calls, following
// OpenTelemetry's RPC semantic conventions (span name "Service/Method",
// rpc.system "grpc", rpc.service, rpc.method, rpc.grpc.status_code), and
// carries the trace across calls in request headers, which Dubbo calls
// attachments: W3C Trace Context (traceparent, tracestate) by default,
// B3 single (b3) or multiple (x-b3-*) headers with [WithFormats], or any
// propagation.TextMapPropagator. The server side reads W3C and both B3
// forms. x-request-id is passed on, and generated at the first hop
// ([RequestID]).
//
// The client side ([Tracing.ClientOptions], triple client interceptors
// for tri.NewTransport) starts a client span per attempt, a child of the
// span in the caller's context, and sends its context with the call. The
// server side ([Tracing.ServerFilter], an sdk server filter, or
// [Tracing.ServerOptions] for a plain triple.Server) continues the
// caller's trace with a server span and hands it to the handler in its
// context. Tracing is off unless these are installed; exporting is the
// TracerProvider's business ([NewOTLPTracerProvider]: OTLP over HTTP or
// gRPC, configured by the OTEL_* variables).
package tracing
