package identity

import (
	"crypto/tls"
	"fmt"
	"slices"

	"github.com/shoalmesh/shoal/sdk/mesh"
)

// ClusterTLS returns the client TLS configuration for a mesh cluster whose
// policy asks for Istio mutual TLS (a DestinationRule with ISTIO_MUTUAL):
// this workload's certificate, the server's chain verified against the
// mesh root, and its SPIFFE ID against t.PeerIDs (any workload of the mesh
// when the list is empty). It is a tri.ClusterTLS:
//
//	tri.NewTransport().WithClusterTLS(src.ClusterTLS)
func (s *Source) ClusterTLS(t *mesh.TLS) (*tls.Config, error) {
	if t == nil || t.Mode != mesh.TLSIstioMutual {
		return nil, fmt.Errorf("identity: TLS %+v is not supported; only istio_mutual (a DestinationRule with ISTIO_MUTUAL) is", t)
	}
	var authorize func(ID) error
	if len(t.PeerIDs) > 0 {
		ids := make([]ID, 0, len(t.PeerIDs))
		for _, p := range t.PeerIDs {
			id, err := ParseID(p)
			if err != nil {
				return nil, fmt.Errorf("identity: the cluster's peer identity %q: %w", p, err)
			}
			ids = append(ids, id)
		}
		authorize = func(id ID) error {
			if slices.Contains(ids, id) {
				return nil
			}
			return fmt.Errorf("identity: the server presented %s, which is not among the identities istiod lists for this cluster %v (the destination's service accounts, sent under ISTIO_MUTUAL); check the workload behind the endpoint and its service account", id, ids)
		}
	}
	return s.ClientTLSConfig(authorize), nil
}
