// Package xdsmesh turns what istiod sends for one `host:port` target (its
// listener, route configuration, clusters and endpoints, already validated by
// package xdsresource) into the sdk's neutral traffic model (sdk/mesh), and
// offers it as an sdk registry.Discovery.
//
// Translate is the pure mapping. Discovery chains the lazy watches: the
// listener names the route configuration, the routes name the clusters, each
// cluster names its endpoints; whenever a piece changes and the chain is
// complete, a new *mesh.Snapshot is published to the target's watchers.
// A piece istiod rejects keeps the last good snapshot in place.
//
// Istio cluster names `outbound|port|subset|host` become the destination
// {Service: "host:port", Subset: subset}, so one mesh service is one host and
// port, with one mesh subset per DestinationRule subset.
package xdsmesh
