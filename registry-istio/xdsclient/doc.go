// Package xdsclient is Shoal's ADS client to istiod: one gRPC stream,
// state of the world, carrying lazy by-name watches of listeners, route
// configurations, clusters and endpoints.
//
// A resource is requested only while someone watches it: the first watcher
// of a name subscribes it and the last one to cancel unsubscribes it. An
// unwatched resource stays cached for as long as istiod still has it
// subscribed (until a request without it goes out; the last LDS and CDS
// names stay, since an empty list would ask for everything), so watching it
// again is answered from the cache: istiod does not answer a subscription
// whose names did not change. Every
// response is validated by package xdsresource; valid resources reach their
// watchers, and a response holding an invalid resource is NACKed with the
// resource name and the reason, while watchers of that resource keep the last
// good version (and get an error saying why it was not replaced).
//
// When the stream breaks the client reconnects with the project's one
// backoff (sdk/mesh.Backoff: exponential, full jitter) and resumes; while the
// next retry is far away it dials istiod's address at a short interval and
// retries at once when the address accepts connections again after refusing
// them (WithReconnectProbe), so a restarted istiod is found within about
// that interval without a dead address being hammered. On reconnect it
// resumes: it sends every current subscription again with the
// last accepted version of each type. Meanwhile watchers keep the resources
// they have, and new watches of cached resources are answered from the
// cache, so a process keeps serving while istiod is away.
//
// Status returns what the client holds (resources, versions, nonces, the last
// error of each type and the connection state) for `shoal show`.
package xdsclient
