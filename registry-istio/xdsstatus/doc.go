// Package xdsstatus publishes what an xDS client holds, from its
// xdsclient.Status, in the two forms the proxyless gRPC world reads:
//
//   - [CSDS]: Envoy's Client Status Discovery Service
//     (envoy.service.status.v3.ClientStatusDiscoveryService, gRFC A40), so
//     that grpcdebug's `xds status` and any CSDS client list each watched
//     resource by type URL and name with its version and state
//     (REQUESTED, ACKED, NACKED, DOES_NOT_EXIST) and, for a NACKed one, the
//     rejected version and the reason in error_state. The validated models
//     the status holds are not Envoy protos, so xds_config (the raw
//     resource) is left out.
//   - [Collector]: a Prometheus collector with gRFC A78's xDS client
//     metrics, grpc_xds_client_connected and grpc_xds_client_resources,
//     computed from the status at each scrape.
package xdsstatus
