// Package xdstest runs an in-process xDS management server (go-control-plane,
// ADS, state of the world) on a loopback listener, for hermetic tests of
// anything that speaks xDS to istiod.
//
// It is a fake, named as such: it serves whatever resources the test sets,
// built with the helpers in this package so that they have the shape istiod's
// proxyless "grpc" generator sends (API listeners named `host:port` whose
// HttpConnectionManager names the RDS route `outbound|port||host`, EDS clusters
// named `outbound|port|subset|host`, ClusterLoadAssignments with localities).
// Like istiod, it does not resend a configuration the client NACKed (it sends
// again on the next update), it sends the full state when the LDS or CDS names
// change, and it answers for every route configuration and endpoint set the
// listeners and clusters name, with empty ones when the test set none.
//
// A test can replace the resources (each Set is a new version), stop and
// restart the server on the same port, and observe every DiscoveryRequest the
// server received, so ACKs and NACKs (version, nonce, error detail) can be
// asserted.
package xdstest
