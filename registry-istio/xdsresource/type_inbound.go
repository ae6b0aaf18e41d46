package xdsresource

import "net/netip"

// InboundListenerPrefix starts the name of a server-side listener: istiod's
// grpc generator answers `xds.istio.io/grpc/lds/inbound/<ip>:<port>` with
// the listener for a workload's serving address (the name grpc-go's xDS
// server asks for).
const InboundListenerPrefix = "xds.istio.io/grpc/lds/inbound/"

// InboundListener is a validated server-side listener: how a server on one
// address must treat its clients. istiod sends one filter chain: plaintext,
// or mutual TLS under PeerAuthentication STRICT, with the RBAC filters of
// the AuthorizationPolicies that select the workload.
type InboundListener struct {
	// Address is the listener's ip:port.
	Address string
	// FilterChain is the one chain every connection uses.
	FilterChain FilterChain
}

// FilterChain is what applies to a connection and the calls on it.
type FilterChain struct {
	// Name is the chain's name (istiod: inbound-plaintext or inbound-mtls).
	Name string
	// TLS is nil for plaintext connections.
	TLS *DownstreamTLS
	// RBAC lists the RBAC HTTP filters in the order they run (istiod: the
	// DENY filter, then the ALLOW filter). A call must pass every one.
	RBAC []RBAC
}

// DownstreamTLS is a server's TLS context.
type DownstreamTLS struct {
	// RequireClientCertificate is true under mutual TLS (the only form
	// accepted: istiod sends no server-only TLS to proxyless clients).
	RequireClientCertificate bool
	// Certificate and Root name the certificate provider instances of the
	// server's certificate and of the roots to verify clients against
	// (istiod: default/default and default/ROOTCA). An agentless workload
	// maps both to its own identity.
	Certificate, Root CertificateProvider
	// SubjectAltNames, if any, are matchers of which one must match a SAN
	// of the client's certificate.
	SubjectAltNames []HeaderMatch
}

// CertificateProvider names a certificate provider plugin instance of the
// bootstrap, and the certificate it holds.
type CertificateProvider struct {
	InstanceName, CertificateName string
}

// RBACAction is what a matching RBAC policy does.
type RBACAction int

// The RBAC actions gRPC supports (istiod sends no others to proxyless
// clients: AUDIT and CUSTOM policies are left out).
const (
	RBACAllow RBACAction = iota
	RBACDeny
)

func (a RBACAction) String() string {
	if a == RBACDeny {
		return "DENY"
	}
	return "ALLOW"
}

// RBAC is one RBAC HTTP filter. With Action ALLOW a call must match one of
// the policies; with DENY it must match none.
type RBAC struct {
	// FilterName is the HTTP filter's name (istiod: envoy.filters.http.rbac
	// or envoy.filters.http.rbac.DENY).
	FilterName string
	// Disabled: the filter carries no rules, so it lets every call through.
	Disabled bool
	Action   RBACAction
	// Policies are sorted by name (istiod: <namespace>-<policy>-<rule index>).
	Policies []RBACPolicy
}

// RBACPolicy matches a call when one of its permissions and one of its
// principals match.
type RBACPolicy struct {
	Name        string
	Permissions []Permission
	Principals  []Principal
}

// RuleKind says what a Permission or Principal tests.
type RuleKind int

// The permission and principal kinds this client enforces.
const (
	// RuleAny always matches.
	RuleAny RuleKind = iota
	// RuleAnd matches when all of Rules match.
	RuleAnd
	// RuleOr matches when one of Rules matches.
	RuleOr
	// RuleNot matches when Rules[0] does not.
	RuleNot
	// RuleHeader tests a request header (Header): `:method`, `:path`,
	// `:authority` or metadata.
	RuleHeader
	// RulePath tests the path `/<service>/<method>` (String).
	RulePath
	// RuleDestinationPort tests the server's port (Port). Permission only.
	RuleDestinationPort
	// RuleDestinationIP tests the server's address (CIDR). Permission only.
	RuleDestinationIP
	// RuleServerName tests the TLS SNI the client sent (String).
	// Permission only.
	RuleServerName
	// RuleAuthenticated matches a client that presented a verified
	// certificate whose principal name (URI SAN, else DNS SAN, else
	// subject) matches String; with HasString false, any verified client.
	// Principal only.
	RuleAuthenticated
	// RuleSourceIP tests the client's address (CIDR): Envoy's
	// direct_remote_ip, remote_ip and source_ip, the same for a proxyless
	// server with no proxy in front. Principal only.
	RuleSourceIP
)

// Rule is a node of a permission or principal tree.
type Rule struct {
	Kind RuleKind
	// Rules are the operands of RuleAnd, RuleOr and RuleNot.
	Rules []Rule
	// Header is the test of RuleHeader.
	Header HeaderMatch
	// String is the test of RulePath, RuleServerName and RuleAuthenticated
	// (Name unused).
	String    HeaderMatch
	HasString bool
	Port      uint32
	CIDR      netip.Prefix
}

// Permission is a test of the call (what is called).
type Permission = Rule

// Principal is a test of the caller (who calls).
type Principal = Rule
