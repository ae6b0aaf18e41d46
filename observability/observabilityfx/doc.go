// Package observabilityfx wires Shoal's observability into an fx
// application:
//
//	fx.New(
//		shoalfx.Module,
//		observabilityfx.Module,
//		observabilityfx.Triple(exports, nil), // in place of shoalfx.Triple
//	)
//
// [Module] provides the *istiometrics.Metrics, adds its server filter to
// shoalfx's server filter group, and runs the admin endpoint
// (*admin.Server) for the application's lifetime, ready once the app has
// started. With a trace.TracerProvider in the graph it also turns tracing
// on ([NewTracing]). [Triple] is shoalfx.Triple with the metrics' (and
// tracing's) client options on the transport. An optional [Config] sets the admin address and the
// metrics' options.
package observabilityfx
