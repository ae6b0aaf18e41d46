// Package accesslog writes an access log of Shoal calls through log/slog,
// sampled, and off unless its filters are installed: a line per call with
// its direction, path, gRPC status, duration, the trace ID when the call
// is traced, and on the server side the caller's workload from Istio's
// x-envoy-peer-metadata. Failed calls are always logged; successful ones
// one in N ([WithEvery]).
package accesslog
