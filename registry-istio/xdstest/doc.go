// Package xdstest runs an in-process xDS management server (go-control-plane,
// ADS, state of the world) on a loopback listener, for hermetic tests of
// anything that speaks xDS to istiod.
//
// It is a fake, named as such: it serves whatever resources the test sets,
// built with the helpers in this package so that they have the shape istiod's
// proxyless "grpc" generator sends (API listeners named `host:port` whose
// HttpConnectionManager names the RDS route `outbound|port||host`, EDS clusters
// named `outbound|port|subset|host`, ClusterLoadAssignments with localities).
// It answers when istiod would and only then (istiod's ShouldRespond): a new
// or resumed subscription (empty nonce), changed LDS/CDS names or added
// RDS/EDS names, and a new version (each Set); never an ACK or NACK with the
// same names whatever version it carries, an RDS/EDS unsubscription, or a
// request with a stale nonce. So a NACKed configuration is not sent again
// until the next Set, and a client that waits for an answer to an unchanged
// subscription waits forever, as it would with istiod. Like istiod, it
// answers for every route configuration and endpoint set the listeners and
// clusters name, with empty ones when the test set none.
//
// A test can replace the resources (each Set is a new version), stop and
// restart the server on the same port, and observe every DiscoveryRequest the
// server received, so ACKs and NACKs (version, nonce, error detail) can be
// asserted.
package xdstest
