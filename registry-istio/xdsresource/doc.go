// Package xdsresource turns xDS resources (Envoy v3 Listener,
// RouteConfiguration, Cluster and ClusterLoadAssignment protos) into
// validated, Envoy-free Go values.
//
// Every Unmarshal function either returns a model that router code can trust
// (regular expressions compiled, weights summed, percentages normalised to
// parts per million) or an error naming the resource, the field and what was
// wrong, which the ADS client sends back to the management server as a NACK.
// Nothing outside registry-istio sees an Envoy type: the models defined here
// are the boundary.
package xdsresource
