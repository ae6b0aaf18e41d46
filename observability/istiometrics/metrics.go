package istiometrics

import (
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shoalmesh/shoal/observability/peer"
	"github.com/shoalmesh/shoal/sdk/call"
)

// The metric names, as Istio's stats filter exports them to Prometheus.
const (
	RequestsTotal         = "istio_requests_total"
	RequestDuration       = "istio_request_duration_milliseconds"
	RequestBytes          = "istio_request_bytes"
	ResponseBytes         = "istio_response_bytes"
	RequestMessagesTotal  = "istio_request_messages_total"
	ResponseMessagesTotal = "istio_response_messages_total"
)

// DurationBuckets are Envoy's default histogram bounds, which Istio's
// istio_request_duration_milliseconds uses unless a pod annotation changes
// them (milliseconds).
var DurationBuckets = []float64{0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000}

// BytesBuckets are the bounds of istio_request_bytes and
// istio_response_bytes: Envoy applies the same default bounds to every
// histogram.
var BytesBuckets = DurationBuckets

// Reporter values: which side of the call recorded it.
const (
	ReporterSource      = "source"
	ReporterDestination = "destination"
)

const (
	unknown = "unknown"
	latest  = "latest"
)

// The label indexes, in the order of labelNames.
const (
	lReporter = iota
	lSourceWorkload
	lSourceCanonicalService
	lSourceCanonicalRevision
	lSourceWorkloadNamespace
	lSourcePrincipal
	lSourceApp
	lSourceVersion
	lSourceCluster
	lDestinationWorkload
	lDestinationWorkloadNamespace
	lDestinationPrincipal
	lDestinationApp
	lDestinationVersion
	lDestinationService
	lDestinationCanonicalService
	lDestinationCanonicalRevision
	lDestinationServiceName
	lDestinationServiceNamespace
	lDestinationCluster
	lRequestProtocol
	lResponseCode
	lGRPCResponseStatus
	lResponseFlags
	lConnectionSecurityPolicy
	numLabels
)

// labelNames are Istio's standard metric labels.
var labelNames = [numLabels]string{
	"reporter",
	"source_workload", "source_canonical_service", "source_canonical_revision", "source_workload_namespace",
	"source_principal", "source_app", "source_version", "source_cluster",
	"destination_workload", "destination_workload_namespace", "destination_principal", "destination_app",
	"destination_version", "destination_service", "destination_canonical_service", "destination_canonical_revision",
	"destination_service_name", "destination_service_namespace", "destination_cluster",
	"request_protocol", "response_code", "grpc_response_status", "response_flags", "connection_security_policy",
}

// LabelNames returns Istio's standard label names in a fixed order.
func LabelNames() []string { return labelNames[:] }

// instruments are the six metric families.
type instruments struct {
	requests, reqMsgs, respMsgs   *prometheus.CounterVec
	duration, reqBytes, respBytes *prometheus.HistogramVec
}

func newInstruments() *instruments {
	names := labelNames[:]
	in := &instruments{
		requests:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: RequestsTotal, Help: "Requests, as Istio's stats filter counts them."}, names),
		reqMsgs:   prometheus.NewCounterVec(prometheus.CounterOpts{Name: RequestMessagesTotal, Help: "gRPC request messages."}, names),
		respMsgs:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: ResponseMessagesTotal, Help: "gRPC response messages."}, names),
		duration:  prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: RequestDuration, Help: "Request duration in milliseconds.", Buckets: DurationBuckets}, names),
		reqBytes:  prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: RequestBytes, Help: "Request message bytes.", Buckets: BytesBuckets}, names),
		respBytes: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: ResponseBytes, Help: "Response message bytes.", Buckets: BytesBuckets}, names),
	}
	return in
}

func (in *instruments) register(reg prometheus.Registerer) error {
	var errs []error
	for _, c := range []prometheus.Collector{in.requests, in.duration, in.reqBytes, in.respBytes, in.reqMsgs, in.respMsgs} {
		if err := reg.Register(c); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("istiometrics: register Istio's metrics: %w; use one Metrics per registry", err)
	}
	return nil
}

// series holds the resolved metrics of one label set, so that recording a
// call is six atomic updates and no map lookup in the library.
type series struct {
	requests, reqMsgs, respMsgs   prometheus.Counter
	duration, reqBytes, respBytes prometheus.Observer
}

func (in *instruments) series(values []string) *series {
	return &series{
		requests: in.requests.WithLabelValues(values...), reqMsgs: in.reqMsgs.WithLabelValues(values...),
		respMsgs: in.respMsgs.WithLabelValues(values...), duration: in.duration.WithLabelValues(values...),
		reqBytes: in.reqBytes.WithLabelValues(values...), respBytes: in.respBytes.WithLabelValues(values...),
	}
}

func (s *series) record(ms float64, reqBytes, respBytes int, reqMsgs, respMsgs int) {
	s.requests.Inc()
	s.duration.Observe(ms)
	s.reqBytes.Observe(float64(reqBytes))
	s.respBytes.Observe(float64(respBytes))
	if reqMsgs > 0 {
		s.reqMsgs.Add(float64(reqMsgs))
	}
	if respMsgs > 0 {
		s.respMsgs.Add(float64(respMsgs))
	}
}

// outcome is what, besides the peer, varies between calls: the gRPC status
// and whether the call never reached a server.
type outcome struct {
	code    call.Code
	connect bool
}

// peerState is one known peer: its labels and, per reporter and outcome,
// the resolved series. Common outcomes (every gRPC code, reached the
// server) live in a fixed array read without locks.
type peerState struct {
	w peer.Workload
	// principal is the peer's SPIFFE ID from its TLS certificate, "" for
	// a plaintext peer (tls.go).
	principal string
	// anonymous marks a peer known only by its certificate: it sent no
	// exchange headers.
	anonymous bool

	byCode [2][call.Unauthenticated + 1]atomic.Pointer[series]
	mu     sync.Mutex
	other  map[otherKey]*series
}

type otherKey struct {
	reporter int
	o        outcome
}

// peerLabel returns v, or "unknown" when empty, as Istio reports a label
// it could not learn.
func peerLabel(v string) string {
	if v == "" {
		return unknown
	}
	return v
}

// sideLabels fills the source_* or destination_* workload labels from w.
func sideLabels(values []string, w *peer.Workload, known bool, workload, ns, app, version, canon, rev, cluster int) {
	if !known {
		for _, i := range []int{workload, ns, app, version, canon, cluster} {
			values[i] = unknown
		}
		values[rev] = latest // Envoy's canonical revision of an unknown peer
		return
	}
	values[workload] = peerLabel(w.WorkloadName)
	values[ns] = peerLabel(w.Namespace)
	values[app] = w.App()
	values[version] = w.Version()
	values[canon] = peerLabel(w.CanonicalService())
	values[rev] = w.CanonicalRevision()
	values[cluster] = peerLabel(w.ClusterID)
}

// labels builds the label values of a call between self and p, reported by
// reporter (0 source, 1 destination).
func (m *Metrics) labels(reporter int, p *peerState, o outcome) []string {
	v := make([]string, numLabels)
	src, dst := &m.self, &p.w
	peerKnown := p != m.unknownPeer && !p.anonymous
	srcKnown, dstKnown := true, peerKnown
	if reporter == 1 {
		src, dst = &p.w, &m.self
		srcKnown, dstKnown = peerKnown, true
	}
	v[lReporter] = ReporterSource
	if reporter == 1 {
		v[lReporter] = ReporterDestination
	}
	sideLabels(v, src, srcKnown, lSourceWorkload, lSourceWorkloadNamespace, lSourceApp, lSourceVersion, lSourceCanonicalService, lSourceCanonicalRevision, lSourceCluster)
	sideLabels(v, dst, dstKnown, lDestinationWorkload, lDestinationWorkloadNamespace, lDestinationApp, lDestinationVersion, lDestinationCanonicalService, lDestinationCanonicalRevision, lDestinationCluster)
	v[lSourcePrincipal], v[lDestinationPrincipal] = unknown, unknown
	if m.cfg.mtls {
		if srcKnown {
			v[lSourcePrincipal] = src.Principal()
		}
		if dstKnown {
			v[lDestinationPrincipal] = dst.Principal()
		}
	}
	m.destinationService(v, reporter, dst, dstKnown)
	m.tlsPrincipals(v, reporter, p)
	v[lRequestProtocol] = "grpc"
	v[lGRPCResponseStatus] = strconv.FormatUint(uint64(o.code), 10)
	v[lResponseCode], v[lResponseFlags] = "200", "-"
	if o.connect {
		// Envoy answers a call it could not connect upstream with 503 and
		// the UF (upstream connection failure) flag.
		v[lResponseCode], v[lResponseFlags] = "503", "UF"
	}
	switch {
	case reporter == 0:
		v[lConnectionSecurityPolicy] = unknown
	case m.cfg.mtls || p.principal != "":
		v[lConnectionSecurityPolicy] = "mutual_tls"
	default:
		v[lConnectionSecurityPolicy] = "none"
	}
	return v
}

// seriesFor returns the resolved series of a call; after the first call
// with the same peer and outcome it takes no lock and allocates nothing.
func (m *Metrics) seriesFor(reporter int, p *peerState, o outcome) *series {
	if !o.connect && o.code <= call.Unauthenticated {
		slot := &p.byCode[reporter][o.code]
		if s := slot.Load(); s != nil {
			return s
		}
		s := m.in.series(m.labels(reporter, p, o))
		slot.Store(s)
		return s
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	k := otherKey{reporter, o}
	if s := p.other[k]; s != nil {
		return s
	}
	if p.other == nil {
		p.other = map[otherKey]*series{}
	}
	s := m.in.series(m.labels(reporter, p, o))
	p.other[k] = s
	return s
}

// maxPeers bounds the peer cache: a stranger sending a new
// x-envoy-peer-metadata on every call must not grow memory (or series)
// without bound. Peers beyond it are reported as unknown.
const maxPeers = 4096

// decodePeer parses an x-envoy-peer-metadata value; a variable so that a
// test can count the parses.
var decodePeer = peer.Decode

// peerOf returns the state of the peer an x-envoy-peer-metadata value
// describes; the unknown peer when it is empty, malformed or the cache is
// full. A value is parsed once: its state is cached by the raw value.
func (m *Metrics) peerOf(header string) *peerState {
	if header == "" {
		return m.unknownPeer
	}
	m.peersMu.RLock()
	p := m.peers[header]
	m.peersMu.RUnlock()
	if p != nil {
		return p
	}
	w, err := decodePeer(header)
	if err != nil {
		return m.unknownPeer
	}
	m.peersMu.Lock()
	defer m.peersMu.Unlock()
	if p = m.peers[header]; p != nil {
		return p
	}
	if len(m.peers) >= maxPeers {
		return m.unknownPeer
	}
	p = &peerState{w: w}
	m.peers[header] = p
	return p
}
