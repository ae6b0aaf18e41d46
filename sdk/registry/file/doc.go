// Package file is a registry kept in one YAML file: providers register by
// adding themselves to it, consumers watch it, and edits are picked up
// without a restart. It is Shoal's embedded default, so that a provider and
// a consumer on one machine find each other with no control plane.
//
// The file lists services by interface name. Each has instances and may
// have a load balancer, subsets and routes, in Istio's vocabulary:
//
//	services:
//	  greet.GreetService:
//	    instances:
//	      - address: 127.0.0.1:50051
//	        version: 1.0.0           # optional, with group: the Dubbo service key
//	        weight: 1                # optional, default 1
//	        labels: {track: stable}  # optional, used by subsets
//	        health: healthy          # optional: healthy, unhealthy, draining, degraded
//	        locality: {region: eu, zone: eu-1}
//	      - address: 127.0.0.1:50052
//	        version: 1.0.0
//	        labels: {track: canary}
//	    loadBalancer:                # optional, default round_robin
//	      kind: ring_hash            # round_robin, random, least_request, ring_hash
//	      hashHeader: x-user         # ring_hash: the header or attachment to hash
//	      minRingSize: 1024
//	    subsets:
//	      - name: stable
//	        labels: {track: stable}
//	      - name: canary
//	        labels: {track: canary}
//	    routes:                      # optional; the first matching route wins
//	      - name: testers
//	        match:
//	          - headers:
//	              x-tester: {exact: "yes"}
//	        route:
//	          - {subset: canary}
//	      - name: split
//	        route:
//	          - {subset: stable, weight: 90}
//	          - {subset: canary, weight: 10}
//	        timeout: 2s
//	        retries: {attempts: 2, perTryTimeout: 500ms, retryOn: "unavailable,connect-failure"}
//
// A match may test path ({exact|prefix|regex}, against "/Service/Method"),
// headers ({exact|prefix|suffix|regex: value} or {present: true}) and
// withoutHeaders (the same, inverted). A destination may name another
// service with service:, which must be in the same file.
//
// A watcher sees the instances whose group and version the consumer
// accepts (see registry.Key.Accepts). When the file changes, it is read
// again: a valid file replaces the state; an invalid one is rejected with an
// error in the log (and from Err) naming the field, while the last good
// state stays in use. A missing file is an empty registry.
//
// Register and Deregister rewrite the file atomically under an advisory
// lock, so several processes on one machine can share it; comments in the
// file are not kept. Register records the registering process as the
// instance's owner (owner: {host, pid}); instances whose owner ran on this
// host and has exited are skipped, rechecked every 2s (WithLivenessInterval)
// and pruned from the file at the next write, so a provider killed before
// it could deregister does not linger.
package file
