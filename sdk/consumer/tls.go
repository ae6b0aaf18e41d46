package consumer

import (
	"context"
	"fmt"

	"github.com/shoalmesh/shoal/sdk/mesh"
)

// TLSTransport is a Transport that can also secure a connection as the
// endpoint's cluster asks (mesh.ClusterPolicy.TLS, Istio's
// trafficPolicy.tls). The Triple transport of package tri is one when it
// has a workload identity.
type TLSTransport interface {
	Transport
	// DialTLS returns a connection to ep secured as t says (t.Secure() is
	// true). It is called on the first call to the endpoint.
	DialTLS(ctx context.Context, ep *mesh.Endpoint, t *mesh.TLS) (Conn, error)
}

// dial opens the connection to ep as its cluster's TLS says: plaintext
// through Dial, secured through DialTLS.
func dial(ctx context.Context, tr Transport, ep *mesh.Endpoint, t *mesh.TLS) (Conn, error) {
	if !t.Secure() {
		return tr.Dial(ctx, ep)
	}
	st, ok := tr.(TLSTransport)
	if !ok {
		return nil, fmt.Errorf("consumer: the cluster of %s asks for %s TLS, which the transport (%T) cannot do; use a transport with a workload identity (tri.Transport.WithClusterTLS)", ep.Address, t.Mode, tr)
	}
	return st.DialTLS(ctx, ep, t)
}

// poolKey is the key of an endpoint's connection: a change of the
// cluster's TLS (a DestinationRule applied or removed) makes a new
// connection and retires the old one.
func poolKey(ep *mesh.Endpoint, t *mesh.TLS) string {
	if k := t.Key(); k != "" {
		return ep.Address + "|" + k
	}
	return ep.Address
}
