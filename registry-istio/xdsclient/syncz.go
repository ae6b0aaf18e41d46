package xdsclient

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"time"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	statusv3 "github.com/envoyproxy/go-control-plane/envoy/service/status/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	grpcstatus "google.golang.org/grpc/status"

	"github.com/shoalmesh/shoal/registry-istio/bootstrap"
)

// SynczURL is the type URL of istiod's sync status debug resource, the one
// istioctl proxy-status asks for.
const SynczURL = "istio.io/debug/syncz"

// ProxySync is one xDS client istiod knows, as its syncz reports it.
type ProxySync struct {
	// ID is istiod's proxy ID of the client: the third field of its node
	// ID, "<pod>.<namespace>", as istioctl proxy-status names it.
	ID           string     `json:"id"`
	ClusterID    string     `json:"clusterID,omitempty"`
	Namespace    string     `json:"namespace,omitempty"`
	IstioVersion string     `json:"istioVersion,omitempty"`
	Types        []TypeSync `json:"types"`
}

// TypeSync is istiod's view of one resource type a client watches.
type TypeSync struct {
	TypeURL string `json:"typeURL"`
	// State is SYNCED (the last nonce sent was acked), STALE (not yet
	// acked), NOT_SENT, ERROR (the client NACKed; Error says why) or
	// UNKNOWN.
	State       string    `json:"state"`
	LastUpdated time.Time `json:"lastUpdated,omitzero"`
	Error       string    `json:"error,omitempty"`
}

// Synced reports whether every type the client watches is SYNCED.
func (p ProxySync) Synced() bool {
	for _, t := range p.Types {
		if t.State != statusv3.ConfigStatus_SYNCED.String() {
			return false
		}
	}
	return len(p.Types) > 0
}

// Syncz asks istiod at cfg.ServerURI, on one ADS stream, for the sync
// status of the clients connected to it (istio.io/debug/syncz), sorted by
// ID. istiod answers only an authenticated caller by default
// (ENABLE_DEBUG_ENDPOINT_AUTH): use its TLS port with a token of a
// ServiceAccount in istio-system (or of the nodes' own namespace, which
// then limits the answer to it). The query's node is cfg.Node without
// PROXY_CONFIG, so that istiod does not list the query itself, and without
// GENERATOR, since istiod answers debug types only through its default
// (status) generator, not the grpc one.
func Syncz(ctx context.Context, cfg *bootstrap.Config) ([]ProxySync, error) {
	if cfg == nil {
		return nil, errors.New("registry-istio: nil bootstrap; use bootstrap.Load or bootstrap.FromEnv")
	}
	q := *cfg
	q.Node.Metadata = maps.Clone(cfg.Node.Metadata)
	delete(q.Node.Metadata, "PROXY_CONFIG")
	delete(q.Node.Metadata, "GENERATOR")
	if err := q.Validate(); err != nil {
		return nil, err
	}
	node, err := q.NodeProto()
	if err != nil {
		return nil, err
	}
	dialOpts, err := transportOptions(&q)
	if err != nil {
		return nil, err
	}
	cc, err := grpc.NewClient(q.ServerURI, dialOpts...)
	if err != nil {
		return nil, fmt.Errorf("registry-istio: istiod at %s: %w; set %s", q.ServerURI, err, bootstrap.EnvAddress)
	}
	defer func() { _ = cc.Close() }()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := discoveryv3.NewAggregatedDiscoveryServiceClient(cc).StreamAggregatedResources(ctx)
	if err != nil {
		return nil, synczError(q.ServerURI, err)
	}
	// A Send that fails with io.EOF leaves the stream's status to Recv.
	if err := stream.Send(&discoveryv3.DiscoveryRequest{Node: node, TypeUrl: SynczURL}); err != nil && !errors.Is(err, io.EOF) {
		return nil, synczError(q.ServerURI, err)
	}
	resp, err := stream.Recv()
	if err != nil {
		return nil, synczError(q.ServerURI, err)
	}
	out := make([]ProxySync, 0, len(resp.GetResources()))
	for _, r := range resp.GetResources() {
		var c statusv3.ClientConfig
		if err := r.UnmarshalTo(&c); err != nil {
			return nil, fmt.Errorf("registry-istio: istiod's syncz holds %s, not a ClientConfig: %w", r.GetTypeUrl(), err)
		}
		out = append(out, proxySync(&c))
	}
	slices.SortFunc(out, func(a, b ProxySync) int { return cmp.Compare(a.ID, b.ID) })
	return out, nil
}

func proxySync(c *statusv3.ClientConfig) ProxySync {
	md := c.GetNode().GetMetadata().GetFields()
	p := ProxySync{
		ID:           c.GetNode().GetId(),
		ClusterID:    md["CLUSTER_ID"].GetStringValue(),
		Namespace:    md["NAMESPACE"].GetStringValue(),
		IstioVersion: md["ISTIO_VERSION"].GetStringValue(),
		Types:        make([]TypeSync, 0, len(c.GetGenericXdsConfigs())),
	}
	for _, g := range c.GetGenericXdsConfigs() {
		t := TypeSync{TypeURL: g.GetTypeUrl(), State: g.GetConfigStatus().String(), Error: g.GetErrorState().GetDetails()}
		if g.GetLastUpdated() != nil {
			t.LastUpdated = g.GetLastUpdated().AsTime()
		}
		p.Types = append(p.Types, t)
	}
	return p
}

// synczError says what to do about a failed syncz query.
func synczError(addr string, err error) error {
	switch grpcstatus.Code(err) {
	case codes.Unauthenticated, codes.PermissionDenied:
		return fmt.Errorf("registry-istio: istiod at %s refused its sync status: %w; it answers debug requests only on its TLS port (15012) with a token of a ServiceAccount in istio-system (set %s, %s and %s)",
			addr, err, bootstrap.EnvAddress, bootstrap.EnvToken, bootstrap.EnvRootCert)
	case codes.Unavailable:
		return fmt.Errorf("registry-istio: no istiod at %s: %w; set %s", addr, err, bootstrap.EnvAddress)
	}
	return fmt.Errorf("registry-istio: sync status from istiod at %s: %w", addr, err)
}
