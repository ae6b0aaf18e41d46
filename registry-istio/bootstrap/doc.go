// Package bootstrap says where istiod is, how to reach it (plaintext on
// 15010, or TLS on 15012 with istiod's root certificate and a service
// account token) and who this process is to istiod (the xDS node).
//
// A Config comes from code (a struct literal, with Identity.Node for the node),
// from the environment a Kubernetes pod gets (FromEnv: POD_NAME,
// POD_NAMESPACE, INSTANCE_IP, ISTIO_META_*, SHOAL_XDS_*), or from a gRPC xDS
// bootstrap file (FromFile, GRPC_XDS_BOOTSTRAP), so that a process already set
// up for grpc-go's proxyless xDS works unchanged. Load picks one of the last
// two.
//
// The node identity follows istiod's expectations for proxyless clients: the
// ID `sidecar~<ip>~<pod>.<namespace>~<namespace>.svc.<domain>` and metadata
// with GENERATOR=grpc (which makes istiod use its proxyless generator),
// NAMESPACE, INSTANCE_IPS, NAME, LABELS and CLUSTER_ID.
package bootstrap
