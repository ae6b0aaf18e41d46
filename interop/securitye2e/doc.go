// Package securitye2e holds the end-to-end tests of Istio workload
// identity in Shoal: a real istiod and kube-apiserver (localmesh), service
// accounts and TokenRequest tokens written as a kubelet's projected token
// files, and registry-istio/identity getting and renewing workload
// certificates from istiod's CA with no istio-agent; registry-istio's
// xDS client on istiod's TLS port with the same token; TestClientMTLS, the
// client side of mTLS: a Shoal consumer toward a cluster whose
// DestinationRule says ISTIO_MUTUAL, and toward grpc-go's own xDS server
// under STRICT; and TestServerSecurity, a Shoal provider following its
// inbound listener (registry-istio/inbound): PeerAuthentication STRICT, bad
// client certificates, AuthorizationPolicy ALLOW and DENY applied live,
// and grpc-go's own xDS client calling it under STRICT;
// TestContainersSecurityFromConfig, the meshgreeter provider and a
// meshgreeter consumer in containers (localmesh Pods with their own service
// accounts and mounted istio-ca tokens), secured only by shoal.yaml.
package securitye2e
