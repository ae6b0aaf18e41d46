package istiometrics

import (
	"context"
	"crypto/tls"
	"strings"
)

// WithTLSState sets how the server filter finds the TLS state of the
// connection a served call arrived on; state returns nil for a plaintext
// connection. When the caller presented a certificate with a SPIFFE URI
// SAN, the call is reported as Envoy reports an Istio mutual TLS call:
// source_principal is that SPIFFE ID, destination_principal this
// workload's own (spiffe://TRUST_DOMAIN/ns/NAMESPACE/sa/SERVICE_ACCOUNT,
// the identity istiod's CA puts in its certificate),
// source_workload_namespace the ID's namespace, and
// connection_security_policy "mutual_tls". Without a certificate the call
// is reported as plaintext (unless WithMutualTLS says otherwise).
//
// The state must be that of a connection whose client certificate was
// verified against the mesh's trust bundle: the filter reads the
// certificate, it does not verify it. Each call over TLS costs one more
// allocation (the cache key of caller and identity).
func WithTLSState(state func(ctx context.Context) *tls.ConnectionState) Option {
	return optionFunc(func(c *config) { c.tlsState = state })
}

// PeerPrincipal returns the SPIFFE ID (the first spiffe:// URI SAN) of
// the peer's leaf certificate in cs, or "" when cs is nil, the peer sent
// no certificate or its certificate has no SPIFFE ID.
func PeerPrincipal(cs *tls.ConnectionState) string {
	if cs == nil || len(cs.PeerCertificates) == 0 {
		return ""
	}
	for _, u := range cs.PeerCertificates[0].URIs {
		if u.Scheme == "spiffe" && u.Host != "" {
			return u.String()
		}
	}
	return ""
}

// caller returns the state of the caller of a served call: its exchange
// header and, over TLS, its certificate's SPIFFE ID.
func (m *Metrics) caller(ctx context.Context, header string) *peerState {
	if m.cfg.tlsState == nil {
		return m.peerOf(header)
	}
	principal := PeerPrincipal(m.cfg.tlsState(ctx))
	if principal == "" {
		return m.peerOf(header)
	}
	key := principal + "\x00" + header
	m.peersMu.RLock()
	p := m.peers[key]
	m.peersMu.RUnlock()
	if p != nil {
		return p
	}
	base := m.peerOf(header)
	m.peersMu.Lock()
	defer m.peersMu.Unlock()
	if p = m.peers[key]; p != nil {
		return p
	}
	if len(m.peers) >= maxPeers {
		return m.unknownPeer
	}
	p = &peerState{w: base.w, principal: principal, anonymous: base == m.unknownPeer}
	m.peers[key] = p
	return p
}

// tlsPrincipals sets the principals and the caller's namespace of a call
// whose caller presented a SPIFFE certificate, as Envoy's inbound stats
// do (the namespace from the ID wins over the exchange's).
func (m *Metrics) tlsPrincipals(v []string, reporter int, p *peerState) {
	if p.principal == "" || reporter != reporterDestination {
		return
	}
	v[lSourcePrincipal] = p.principal
	v[lDestinationPrincipal] = m.self.Principal()
	if ns := spiffeNamespace(p.principal); ns != "" {
		v[lSourceWorkloadNamespace] = ns
	}
}

// spiffeNamespace returns NS of spiffe://TD/ns/NS/sa/SA, "" for other IDs.
func spiffeNamespace(id string) string {
	_, rest, ok := strings.Cut(id, "/ns/")
	if !ok {
		return ""
	}
	ns, _, ok := strings.Cut(rest, "/")
	if !ok {
		return ""
	}
	return ns
}
