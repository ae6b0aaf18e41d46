package istiometrics

import (
	"context"
	"slices"
	"strings"
	"sync"

	"github.com/shoalmesh/shoal/observability/peer"
	"github.com/shoalmesh/shoal/sdk/consumer"
	"github.com/shoalmesh/shoal/sdk/mesh"
	"github.com/shoalmesh/shoal/sdk/tri"
	"github.com/shoalmesh/shoal/triple"
)

// Transport returns a consumer transport that records calls as
// ClientOptions does and reports as destination_service the service behind
// each endpoint: the host its registry gave as the endpoint's
// mesh.LabelService (registry-istio sets the Service FQDN of the xDS
// cluster the endpoint came from), as Envoy reports the service of the
// cluster a call went to. destination_service_name is the host's first
// label. Endpoints without that label are reported as ClientOptions
// reports them. opts are the Triple options of every connection (TLS,
// message sizes); the metrics' options are added to them.
//
// The service is resolved when an endpoint is dialled, not per call.
func (m *Metrics) Transport(opts ...triple.ClientOption) consumer.Transport {
	return &serviceTransport{m: m, opts: slices.Clip(opts), byHost: map[string]*tri.Transport{}}
}

type serviceTransport struct {
	m    *Metrics
	opts []triple.ClientOption

	mu     sync.Mutex
	byHost map[string]*tri.Transport
}

func (t *serviceTransport) Dial(ctx context.Context, ep *mesh.Endpoint) (consumer.Conn, error) {
	return t.transport(ep.Labels[mesh.LabelService]).Dial(ctx, ep)
}

// transport returns the Triple transport whose interceptors report host.
func (t *serviceTransport) transport(host string) *tri.Transport {
	t.mu.Lock()
	defer t.mu.Unlock()
	if tr, ok := t.byHost[host]; ok {
		return tr
	}
	m := t.m
	if host != "" {
		m = t.m.forService(host)
	}
	tr := tri.NewTransport(append(t.opts, m.ClientOptions()...)...)
	t.byHost[host] = tr
	return tr
}

// forService returns a recorder that shares m's instruments and identity
// and reports host as the destination service of the calls it makes.
func (m *Metrics) forService(host string) *Metrics {
	cfg := m.cfg
	cfg.destinationHost = host
	return &Metrics{
		cfg: cfg, self: m.self, in: m.in, registry: m.registry, exchange: m.exchange,
		peers: map[string]*peerState{}, unknownPeer: &peerState{},
	}
}

// destinationService fills destination_service, _name and _namespace.
// At the source they come from the service the call went to when the
// transport knows it (Envoy: the cluster's service), with the namespace
// of the peer that answered; otherwise from the destination workload.
func (m *Metrics) destinationService(v []string, reporter int, dst *peer.Workload, known bool) {
	if reporter == reporterSource && m.cfg.destinationHost != "" {
		host := m.cfg.destinationHost
		name, _, _ := strings.Cut(host, ".")
		v[lDestinationService], v[lDestinationServiceName] = host, name
		v[lDestinationServiceNamespace] = unknown
		if known {
			v[lDestinationServiceNamespace] = peerLabel(dst.Namespace)
		}
		return
	}
	if !known {
		v[lDestinationService], v[lDestinationServiceName], v[lDestinationServiceNamespace] = unknown, unknown, unknown
		return
	}
	name := peerLabel(dst.CanonicalService())
	if reporter == reporterDestination && m.cfg.serviceName != "" {
		name = m.cfg.serviceName
	}
	v[lDestinationServiceName] = name
	v[lDestinationServiceNamespace] = peerLabel(dst.Namespace)
	v[lDestinationService] = name + "." + peerLabel(dst.Namespace) + ".svc." + m.cfg.domain
}
