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
// shoalfx's server filter group, provides the mesh client's metrics
// (meshmetrics) as the observer.Observer shoalfx gives every reference and
// routing engine, and runs the admin endpoint (*admin.Server) for the
// application's lifetime, ready once the app has started. With a
// trace.TracerProvider in the graph, or a sampler named in shoal.yaml, it
// turns tracing on ([NewTracing]); with observability.accessLog.every set,
// the access log ([NewAccessLog]). [Triple] is shoalfx.Triple with the
// metrics' (and tracing's) client options on the transport. shoal.yaml's
// observability section (config.Observability) turns metrics off, sets
// the admin address, the sampler and the access log's sampling; an
// optional [Config] sets defaults and the metrics' options in code.
package observabilityfx
