// Package tracingtest is an OTLP trace receiver for tests, on loopback:
// OTLP/gRPC (the collector's TraceService) or OTLP/HTTP with protobuf
// bodies (POST /v1/traces). It keeps the spans it receives by the
// service.name of their resource, so a test can check what each
// application exported, and lets a test wait until spans have arrived
// (exporters batch), without sleeping.
package tracingtest
