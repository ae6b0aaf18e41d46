// Package config is the schema of shoal.yaml, an application's Shoal
// configuration, and its loader.
//
// Everything has a default, so the file is optional: with no file at all an
// application is named after its executable, serves Triple on port 50051,
// and registers and discovers through the embedded file registry.
//
// [Load] builds a [Config] in layers, each over the one before:
//
//  1. defaults;
//  2. the file: WithFile, else $SHOAL_CONFIG, else ./shoal.yaml if present;
//  3. code options (WithApplicationName, WithReference, Modify, ...);
//  4. environment variables, so an operator can change a built binary.
//
// Every scalar field has a variable named after its path in upper snake
// case: application.name is SHOAL_APPLICATION_NAME, references[0].timeout
// is SHOAL_REFERENCES_0_TIMEOUT, logging.level is SHOAL_LOGGING_LEVEL. List
// fields of strings take comma-separated values. Variables can change list
// elements the file or code created, and the default registry and protocol
// (SHOAL_PROTOCOLS_0_PORT=0 with no file), but do not create new ones.
//
// The result is validated as a whole; every problem is reported with the
// field's path and the fix, for example:
//
//	shoal.yaml: references[1].interface: empty; set it to the service's interface name such as greet.GreetService
//
// An example file:
//
//	application:
//	  name: greeter
//	  labels: {app: greeter, version: v1}   # this workload's labels (route sourceLabels)
//	  drainDelay: 1s                       # deregister, wait this long, then shut down
//	  shutdownTimeout: 30s                 # bound on the whole stop
//	logging:
//	  level: info        # debug, info, warn, error
//	  format: text       # text or json
//	registries:
//	  - name: local
//	    kind: file       # file, direct, or a plug-in such as istio
//	    address: /tmp/shoal/registry.yaml
//	protocols:
//	  - name: tri
//	    port: 50051
//	services:                        # what this application provides
//	  - interface: greet.GreetService
//	    version: 1.0.0
//	references:                      # what it calls
//	  - name: greeter
//	    interface: greet.GreetService
//	    version: 1.0.0
//	    balancer: round_robin        # round_robin, random, least_request, ring_hash
//	    cluster: failover            # failover or failfast
//	    retries: 2
//	    timeout: 3s
//	    waitForReady: false          # true: wait for a provider instead of failing
//	    providedBy: greeter          # optional: the providing application (app-level reference)
//	filters:
//	  client: [auth, metrics]        # run in this order
//	  server: [metrics]
//	observability:                   # read by the observability module's observabilityfx
//	  metrics: {enabled: true}       # Istio's request metrics and the mesh client's metrics
//	  admin: {address: "127.0.0.1:15000"}
//	  tracing:
//	    sampler: parentbased_traceidratio   # as OTEL_TRACES_SAMPLER; empty: no tracing of its own
//	    samplerArg: "0.01"
//	  accessLog: {every: 100}        # one success in 100, every failure; 0: off
package config
