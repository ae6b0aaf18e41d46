package mesh

import (
	"fmt"
	"slices"
	"strings"
)

// TLSMode says how calls to a cluster's endpoints are secured.
type TLSMode uint8

// The TLS modes. TLSDisable, the zero value, is plaintext.
const (
	TLSDisable TLSMode = iota
	// TLSIstioMutual is mutual TLS with the workload's mesh identity (an
	// Istio DestinationRule with tls.mode ISTIO_MUTUAL): the client
	// presents its own certificate and verifies the server's chain against
	// the mesh root and its identity against TLS.PeerIDs.
	TLSIstioMutual
)

func (m TLSMode) String() string {
	switch m {
	case TLSDisable:
		return "disable"
	case TLSIstioMutual:
		return "istio_mutual"
	}
	return fmt.Sprintf("tlsmode(%d)", uint8(m))
}

// TLS is a cluster's transport security (Istio's trafficPolicy.tls). A nil
// *TLS is plaintext.
type TLS struct {
	Mode TLSMode
	// PeerIDs are the identities (SPIFFE IDs such as
	// spiffe://cluster.local/ns/default/sa/greeter) the server may present;
	// empty accepts any workload of the mesh.
	PeerIDs []string
}

// Secure reports whether t asks for TLS at all.
func (t *TLS) Secure() bool { return t != nil && t.Mode != TLSDisable }

// Key identifies t for connection pooling: two clusters whose TLS has the
// same key can share a connection to an endpoint. It is empty for
// plaintext.
func (t *TLS) Key() string {
	if !t.Secure() {
		return ""
	}
	ids := slices.Clone(t.PeerIDs)
	slices.Sort(ids)
	return t.Mode.String() + "|" + strings.Join(ids, ",")
}

func cloneTLS(t *TLS) *TLS {
	if t == nil {
		return nil
	}
	c := *t
	c.PeerIDs = slices.Clone(t.PeerIDs)
	return &c
}

func validateTLS(path string, t *TLS, bad func(string, string, ...any)) {
	if t == nil {
		return
	}
	if t.Mode > TLSIstioMutual {
		bad(path+".tls.mode", "%d is not a TLS mode; use disable or istio_mutual", t.Mode)
	}
	for i, id := range t.PeerIDs {
		if !strings.HasPrefix(id, "spiffe://") {
			bad(fmt.Sprintf("%s.tls.peerIDs[%d]", path, i), "%q is not a SPIFFE ID; write spiffe://<trust domain>/ns/<namespace>/sa/<service account>", id)
		}
	}
}
