package tri

import (
	"context"
	"crypto/tls"
	"fmt"

	"github.com/shoalmesh/shoal/triple"

	"github.com/shoalmesh/shoal/sdk/consumer"
	"github.com/shoalmesh/shoal/sdk/mesh"
)

// ClusterTLS returns the client TLS configuration for a cluster whose
// policy asks for TLS: the workload's certificate, and a verification of
// the server's chain and identity against t.PeerIDs. registry-istio's
// identity.Source.ClusterTLS is one.
type ClusterTLS func(t *mesh.TLS) (*tls.Config, error)

// WithClusterTLS returns a copy of t that dials the endpoints of clusters
// whose policy asks for TLS (an Istio DestinationRule with ISTIO_MUTUAL)
// with Triple over TLS (ALPN h2) configured by f, and the others as t does.
func (t *Transport) WithClusterTLS(f ClusterTLS) *Transport {
	return &Transport{opts: t.opts, clusterTLS: f}
}

var _ consumer.TLSTransport = (*Transport)(nil)

// DialTLS implements consumer.TLSTransport: a connection to ep with the TLS
// configuration WithClusterTLS builds for tp.
func (t *Transport) DialTLS(_ context.Context, ep *mesh.Endpoint, tp *mesh.TLS) (consumer.Conn, error) {
	if t.clusterTLS == nil {
		return nil, fmt.Errorf("tri: the cluster of %s asks for %s TLS but the transport has no workload identity; build it with WithClusterTLS (for Istio, identity.Source.ClusterTLS)", ep.Address, tp.Mode)
	}
	cfg, err := t.clusterTLS(tp)
	if err != nil {
		return nil, fmt.Errorf("tri: TLS for %s: %w", ep.Address, err)
	}
	opts := append(append(make([]triple.ClientOption, 0, len(t.opts)+1), t.opts...), triple.WithTLS(cfg))
	cc, err := triple.Dial(ep.Address, opts...)
	if err != nil {
		return nil, err
	}
	return &conn{cc: cc}, nil
}
