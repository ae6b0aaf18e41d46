// Package identity gives a process its Istio workload identity with no
// istio-agent beside it: it asks istiod's CA
// (istio.v1.auth.IstioCertificateService/CreateCertificate, on istiod's TLS
// port, 15012) for a certificate, authenticating with the Kubernetes
// service-account token of a projected token file, and keeps that
// certificate fresh.
//
// A Source holds the private key (ECDSA P-256, in memory only) and the
// current certificate. It renews at half of the certificate's remaining
// life (less a random jitter), retries with sdk/mesh.Backoff while istiod
// is away, and keeps serving the current certificate until it expires,
// logging when it does. Source.GetCertificate and
// Source.GetClientCertificate plug into a tls.Config; Source.Roots is the
// trust root.
//
// With istio-agent beside the process, FromBootstrap (or FromFiles) gives a
// Source serving the certificate files of the gRPC bootstrap's file_watcher
// certificate provider instead, reloaded when they change.
//
// ClusterTLS is the client TLS configuration toward a mesh cluster whose
// policy is ISTIO_MUTUAL (for sdk/tri's Transport.WithClusterTLS).
//
// Istio certificates carry their identity as a SPIFFE URI SAN
// (spiffe://<trust domain>/ns/<namespace>/sa/<service account>) and no DNS
// name, so Go's hostname verification cannot apply: VerifyPeer checks a
// peer's chain against the root and returns its SPIFFE ID.
package identity
