// Package csds serves Envoy's Client Status Discovery Service
// (envoy.service.status.v3.ClientStatusDiscoveryService, gRFC A40) from an
// xDS client's status, so that grpcdebug's `xds status` and any CSDS client
// list what a Shoal application subscribed to: each resource by type URL
// and name with its version and state (REQUESTED, ACKED, NACKED,
// DOES_NOT_EXIST) and, for a NACKed resource, the rejected version and the
// reason in error_state.
//
// The status comes from xdsclient.Client.Status; the validated models it
// holds are not Envoy protos, so xds_config (the raw resource) is left out.
package csds
