// Package mesh is Shoal's neutral traffic model: the endpoints of a service,
// its subsets and cluster policies, and the routes that send calls to them.
//
// It says what Istio's VirtualService and DestinationRule say, without any
// Envoy or Istio type: registry-istio fills it from xDS, the embedded
// registries fill it from files and URLs, and router-mesh executes it.
//
// Values are built as plain struct literals and then frozen by
// [NewSnapshot], which validates every field (reporting each problem with
// its path, e.g. routes[0].destinations[1].weight), deep-copies the input,
// compiles the matchers and precomputes each cluster's usable endpoints.
// A *Snapshot is immutable: readers on the call path share it without locks
// and must not modify the slices and maps it hands out.
//
// Semantics follow Istio where the two could differ:
//   - a route's matches are ORed, the conditions inside one match are ANDed,
//     and a route without matches matches every call;
//   - regular expressions are RE2 and must match the whole value;
//   - a header match without a value matches when the header is present, and
//     Invert turns any header match around (Istio's withoutHeaders);
//   - retry Attempts counts retries after the first try;
//   - a subset's policy replaces the service's load balancer, connection pool
//     and outlier detection settings one block at a time;
//   - percentages are 0 to 100.
package mesh
