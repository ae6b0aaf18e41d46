package istiometrics

import (
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	"github.com/shoalmesh/shoal/observability/peer"
	"github.com/shoalmesh/shoal/sdk/call"
	"github.com/shoalmesh/shoal/triple"
)

// FilterName names the server filter in filter registries and
// configuration ("filters: {server: [istio-metrics]}").
const FilterName = "istio-metrics"

// Metrics records Istio's standard request metrics for one application.
// It is safe for concurrent use; build one per application.
type Metrics struct {
	cfg      config
	self     peer.Workload
	in       *instruments
	registry *prometheus.Registry
	// exchange is the metadata this application sends, read-only once
	// built: triple only reads outgoing metadata.
	exchange triple.Metadata
	// exchangeOpt sends exchange with a client call, built once.
	exchangeOpt triple.CallOption

	peersMu     sync.RWMutex
	peers       map[string]*peerState
	unknownPeer *peerState
}

// New registers Istio's six request metrics and returns the recorder.
func New(opts ...Option) (*Metrics, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	m := &Metrics{cfg: cfg, self: *cfg.self, in: newInstruments(), peers: map[string]*peerState{}, unknownPeer: &peerState{}}
	reg := cfg.registerer
	if reg == nil {
		m.registry = prometheus.NewRegistry()
		reg = m.registry
	}
	if err := m.in.register(reg); err != nil {
		return nil, err
	}
	md, err := m.self.Encode()
	if err != nil {
		return nil, fmt.Errorf("istiometrics: %w", err)
	}
	m.exchange = triple.Metadata{peer.HeaderMetadata: {md}, peer.HeaderID: {m.self.NodeID()}}
	m.exchangeOpt = triple.RequestHeaders(m.exchange)
	return m, nil
}

// Registry returns the registry New created, or nil when WithRegisterer
// gave one.
func (m *Metrics) Registry() *prometheus.Registry { return m.registry }

// Workload returns the identity this application reports and sends.
func (m *Metrics) Workload() peer.Workload { return m.self }

// ExchangeHeaders returns the metadata exchange headers this application
// sends: x-envoy-peer-metadata and x-envoy-peer-metadata-id.
func (m *Metrics) ExchangeHeaders() map[string]string {
	return map[string]string{peer.HeaderMetadata: m.exchange.Get(peer.HeaderMetadata), peer.HeaderID: m.exchange.Get(peer.HeaderID)}
}

const (
	reporterSource      = 0
	reporterDestination = 1
)

func outcomeOf(err error) outcome {
	return outcome{code: call.CodeOf(err), connect: err != nil && (triple.IsConnectFailure(err) || call.IsConnectFailure(err))}
}

func millisSince(start time.Time) float64 {
	return float64(time.Since(start).Nanoseconds()) / 1e6
}

// size is the serialized size of a protobuf message, 0 for anything else
// (wrapper-mode hessian2 values are not measured).
func size(m any) int {
	if pm, ok := m.(proto.Message); ok && pm != nil {
		return proto.Size(pm)
	}
	return 0
}
