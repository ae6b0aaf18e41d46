package xdstest

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"sync"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"
)

// snapshotKey is the single snapshot every client node is served from.
const snapshotKey = "xdstest"

// Request is one DiscoveryRequest the server received.
type Request struct {
	// Stream numbers the ADS streams in the order they opened, from 1,
	// unique across Stop and Restart.
	Stream        int64
	TypeURL       string
	VersionInfo   string
	ResponseNonce string
	ResourceNames []string
	// ErrorDetail is the NACK message; empty for an ACK or a subscription.
	ErrorDetail string
	// Node is set on the first request of a stream (clients may omit it later).
	Node *corev3.Node
}

// IsNACK reports whether the request rejects the previous response.
func (r Request) IsNACK() bool { return r.ErrorDetail != "" }

// TB is the part of testing.TB the server uses; *testing.T, *testing.B and
// *testing.F satisfy it, and so can a small adapter in a runnable example.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
	Cleanup(func())
}

// Server is the in-process management server. Create it with NewServer.
type Server struct {
	tb       TB
	cache    cachev3.SnapshotCache
	istiod   *istiodLike
	grpcOpts []grpc.ServerOption

	mu       sync.Mutex
	cond     *sync.Cond
	addr     string
	grpc     *grpc.Server
	serving  chan struct{} // closed when the current Serve returns
	version  int
	requests []Request
	streams  int
	open     int
	metadata map[int64]metadata.MD
}

// Option configures a Server.
type Option func(*Server)

// WithGRPCOptions adds gRPC server options, for example grpc.Creds for TLS
// (istiod's port 15012).
func WithGRPCOptions(opts ...grpc.ServerOption) Option {
	return func(s *Server) { s.grpcOpts = append(s.grpcOpts, opts...) }
}

// NewServer starts a management server on 127.0.0.1 with an ephemeral port.
// It is stopped by t's cleanup.
func NewServer(tb TB, opts ...Option) *Server {
	tb.Helper()
	s := &Server{tb: tb, cache: cachev3.NewSnapshotCache(false, constantHash{}, nil), metadata: map[int64]metadata.MD{}}
	for _, o := range opts {
		o(s)
	}
	s.istiod = &istiodLike{cache: s.cache, streams: map[int64]map[string]*watched{}}
	s.cond = sync.NewCond(&s.mu)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("xdstest: listen on loopback: %v", err)
	}
	s.addr = lis.Addr().String()
	s.serve(lis)
	tb.Cleanup(s.Stop)
	return s
}

// Address is the server's host:port on loopback. It stays the same across
// Stop and Restart.
func (s *Server) Address() string { return s.addr }

// Set replaces every resource the server serves with r, as a new version, and
// returns that version. Open watches get the new state at once.
//
// Like istiod, the server answers for every route configuration a listener
// names and every endpoint set a cluster names: those r lacks are served
// empty.
func (s *Server) Set(r Resources) string {
	s.tb.Helper()
	r = completed(r)
	s.mu.Lock()
	s.version++
	version := strconv.Itoa(s.version)
	s.mu.Unlock()
	snap, err := cachev3.NewSnapshot(version, map[resourcev3.Type][]types.Resource{
		resourcev3.ListenerType: toResources(r.Listeners),
		resourcev3.RouteType:    toResources(r.Routes),
		resourcev3.ClusterType:  toResources(r.Clusters),
		resourcev3.EndpointType: toResources(r.Endpoints),
	})
	if err != nil {
		s.tb.Fatalf("xdstest: build snapshot: %v", err)
	}
	if err := s.cache.SetSnapshot(context.Background(), snapshotKey, snap); err != nil {
		s.tb.Fatalf("xdstest: set snapshot: %v", err)
	}
	return version
}

func toResources[T types.Resource](in []T) []types.Resource {
	out := make([]types.Resource, len(in))
	for i, r := range in {
		out[i] = r
	}
	return out
}

// Stop closes the listener and every open stream at once, like a crashed
// istiod. It is safe to call more than once.
func (s *Server) Stop() {
	s.mu.Lock()
	g, serving := s.grpc, s.serving
	s.grpc = nil
	s.mu.Unlock()
	if g == nil {
		return
	}
	g.Stop()
	<-serving
}

// Restart starts serving again on the same address after Stop, with the
// resources last Set.
func (s *Server) Restart() {
	s.tb.Helper()
	s.mu.Lock()
	running := s.grpc != nil
	s.mu.Unlock()
	if running {
		s.tb.Fatalf("xdstest: Restart while the server is running; call Stop first")
	}
	lis, err := net.Listen("tcp", s.addr)
	if err != nil {
		s.tb.Fatalf("xdstest: listen again on %s: %v", s.addr, err)
	}
	s.serve(lis)
}

func (s *Server) serve(lis net.Listener) {
	g := grpc.NewServer(s.grpcOpts...)
	// go-control-plane numbers streams from 1 in each server instance;
	// global numbers stay unique across Restart.
	var (
		idsMu sync.Mutex
		ids   = map[int64]int64{}
	)
	global := func(id int64) int64 {
		idsMu.Lock()
		defer idsMu.Unlock()
		g, ok := ids[id]
		if !ok {
			s.mu.Lock()
			s.streams++
			g = int64(s.streams)
			s.mu.Unlock()
			ids[id] = g
		}
		return g
	}
	callbacks := serverv3.CallbackFuncs{
		StreamOpenFunc: func(ctx context.Context, id int64, _ string) error {
			gid := global(id)
			md, _ := metadata.FromIncomingContext(ctx)
			s.mu.Lock()
			s.metadata[gid] = md.Copy()
			s.open++
			s.cond.Broadcast()
			s.mu.Unlock()
			return nil
		},
		StreamClosedFunc: func(id int64, _ *corev3.Node) {
			s.istiod.closed(global(id))
			s.mu.Lock()
			s.open--
			s.cond.Broadcast()
			s.mu.Unlock()
		},
		StreamRequestFunc: func(id int64, req *discoveryv3.DiscoveryRequest) error {
			gid := global(id)
			s.record(gid, req)
			s.istiod.adjust(gid, req)
			return nil
		},
		StreamResponseFunc: func(_ context.Context, id int64, _ *discoveryv3.DiscoveryRequest, resp *discoveryv3.DiscoveryResponse) {
			s.istiod.sent(global(id), resp)
		},
	}
	xds := serverv3.NewServer(context.Background(), s.cache, callbacks)
	discoveryv3.RegisterAggregatedDiscoveryServiceServer(g, xds)
	serving := make(chan struct{})
	s.mu.Lock()
	s.grpc, s.serving = g, serving
	s.mu.Unlock()
	go func() {
		defer close(serving)
		_ = g.Serve(lis) // returns when Stop is called
	}()
}

func (s *Server) record(id int64, req *discoveryv3.DiscoveryRequest) {
	r := Request{
		Stream:        id,
		TypeURL:       req.GetTypeUrl(),
		VersionInfo:   req.GetVersionInfo(),
		ResponseNonce: req.GetResponseNonce(),
		ResourceNames: slices.Clone(req.GetResourceNames()),
		ErrorDetail:   req.GetErrorDetail().GetMessage(),
	}
	if req.GetNode() != nil {
		r.Node = proto.Clone(req.GetNode()).(*corev3.Node)
	}
	s.mu.Lock()
	s.requests = append(s.requests, r)
	s.cond.Broadcast()
	s.mu.Unlock()
}

// Requests returns every DiscoveryRequest received so far, in order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// StreamMetadata returns the gRPC metadata (headers such as authorization)
// of the stream numbered id, as in Request.Stream.
func (s *Server) StreamMetadata(id int64) metadata.MD {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.metadata[id].Copy()
}

// OpenStreams returns the number of ADS streams open right now.
func (s *Server) OpenStreams() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.open
}

// WaitForRequest blocks until a request for which match returns true has
// been received (at any time since the server started, so no request is
// missed), or ctx is done.
func (s *Server) WaitForRequest(ctx context.Context, match func(Request) bool) (Request, error) {
	return s.waitForRequestFrom(ctx, 0, match)
}

// WaitForNewRequest is WaitForRequest over the requests received after the
// first n (n from len(Requests())).
func (s *Server) WaitForNewRequest(ctx context.Context, n int, match func(Request) bool) (Request, error) {
	return s.waitForRequestFrom(ctx, n, match)
}

func (s *Server) waitForRequestFrom(ctx context.Context, from int, match func(Request) bool) (Request, error) {
	stop := context.AfterFunc(ctx, func() {
		s.mu.Lock()
		s.cond.Broadcast()
		s.mu.Unlock()
	})
	defer stop()
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := from; ; {
		for ; i < len(s.requests); i++ {
			if match(s.requests[i]) {
				return s.requests[i], nil
			}
		}
		if err := ctx.Err(); err != nil {
			return Request{}, fmt.Errorf("xdstest: no matching request among %d received: %w", len(s.requests), err)
		}
		s.cond.Wait()
	}
}

// constantHash serves one snapshot to every node.
type constantHash struct{}

func (constantHash) ID(*corev3.Node) string { return snapshotKey }

// istiodLike makes go-control-plane's snapshot cache answer requests when
// istiod would, and only then (istiod's ShouldRespond in pkg/xds/server.go).
// It sees each request before the cache does and sets the version the cache
// compares with its snapshot: empty to make it answer, the snapshot's own to
// keep it silent until the next Set. Istiod ignores version_info; it
// answers
//
//   - the first request of a type on a stream, and any request with an
//     empty response nonce (a new or resumed subscription);
//   - an ACK whose names differ from the last ones: for LDS and CDS any
//     change, for RDS and EDS only added names;
//
// and stays silent on a NACK (so a rejected version is not sent again until
// the resources change), on an ACK with the same names (even if they were
// removed and added again between two requests), on an RDS or EDS request
// naming nothing (an unsubscription, after which the next request is a new
// subscription), and on a request with a stale nonce (ignored altogether).
// go-control-plane alone answers whenever the request's version differs
// from its snapshot's and stays silent when new LDS/CDS names do not exist.
type istiodLike struct {
	cache cachev3.SnapshotCache

	mu      sync.Mutex
	streams map[int64]map[string]*watched // stream -> type URL -> subscription
}

// watched is one type's subscription on a stream, as istiod records it.
type watched struct {
	names       map[string]bool
	nonceSent   string
	versionSent string
}

func (c *istiodLike) adjust(stream int64, req *discoveryv3.DiscoveryRequest) {
	respond, versionSent, nonceSent := c.shouldRespond(stream, req)
	switch {
	case respond:
		req.VersionInfo = ""
		// go-control-plane drops a request with an empty nonce on a stream
		// that has seen an answer of its type as stale; istiod answers it.
		req.ResponseNonce = nonceSent
	case versionSent != "":
		// Silent until a newer version than the last one sent on this
		// stream exists, which is istiod's push on a config change.
		req.VersionInfo = versionSent
	default:
		req.VersionInfo = ""
		if snap, err := c.cache.GetSnapshot(snapshotKey); err == nil {
			req.VersionInfo = snap.GetVersion(req.GetTypeUrl())
		}
	}
}

func (c *istiodLike) shouldRespond(stream int64, req *discoveryv3.DiscoveryRequest) (respond bool, versionSent, nonceSent string) {
	t := req.GetTypeUrl()
	c.mu.Lock()
	defer c.mu.Unlock()
	byType, ok := c.streams[stream]
	if !ok {
		byType = map[string]*watched{}
		c.streams[stream] = byType
	}
	prev := byType[t]
	if prev != nil {
		versionSent, nonceSent = prev.versionSent, prev.nonceSent
	}
	if req.GetErrorDetail() != nil {
		return false, versionSent, nonceSent
	}
	wildcardType := t == resourcev3.ListenerType || t == resourcev3.ClusterType
	if !wildcardType && len(req.GetResourceNames()) == 0 {
		delete(byType, t) // unsubscribed
		return false, versionSent, nonceSent
	}
	names := map[string]bool{}
	for _, n := range req.GetResourceNames() {
		names[n] = true
	}
	if prev == nil || req.GetResponseNonce() == "" {
		w := &watched{names: names}
		if prev != nil {
			w.nonceSent, w.versionSent = prev.nonceSent, prev.versionSent
		}
		byType[t] = w
		return true, versionSent, nonceSent
	}
	if req.GetResponseNonce() != prev.nonceSent {
		return false, versionSent, nonceSent // stale: istiod ignores it, names included
	}
	added, removed := false, false
	for n := range names {
		added = added || !prev.names[n]
	}
	for n := range prev.names {
		removed = removed || !names[n]
	}
	prev.names = names
	if wildcardType {
		return added || removed, versionSent, nonceSent
	}
	return added, versionSent, nonceSent
}

// sent records the nonce of a response about to go out on stream.
func (c *istiodLike) sent(stream int64, resp *discoveryv3.DiscoveryResponse) {
	c.mu.Lock()
	defer c.mu.Unlock()
	byType, ok := c.streams[stream]
	if !ok {
		byType = map[string]*watched{}
		c.streams[stream] = byType
	}
	w, ok := byType[resp.GetTypeUrl()]
	if !ok {
		w = &watched{names: map[string]bool{}}
		byType[resp.GetTypeUrl()] = w
	}
	w.nonceSent, w.versionSent = resp.GetNonce(), resp.GetVersionInfo()
}

func (c *istiodLike) closed(stream int64) {
	c.mu.Lock()
	delete(c.streams, stream)
	c.mu.Unlock()
}

// completed adds an empty RouteConfiguration for each RDS name a listener
// uses and an empty ClusterLoadAssignment for each EDS name a cluster uses,
// when r has none.
func completed(r Resources) Resources {
	routes := map[string]bool{}
	for _, rc := range r.Routes {
		routes[rc.GetName()] = true
	}
	eds := map[string]bool{}
	for _, e := range r.Endpoints {
		eds[e.GetClusterName()] = true
	}
	out := r.Merge()
	for _, l := range r.Listeners {
		hcm := &hcmv3.HttpConnectionManager{}
		if l.GetApiListener().GetApiListener().UnmarshalTo(hcm) != nil {
			continue // not an API listener: nothing to complete
		}
		if name := hcm.GetRds().GetRouteConfigName(); name != "" && !routes[name] {
			routes[name] = true
			out.Routes = append(out.Routes, &routev3.RouteConfiguration{Name: name})
		}
	}
	for _, c := range r.Clusters {
		name := c.GetEdsClusterConfig().GetServiceName()
		if name == "" {
			name = c.GetName()
		}
		if c.GetType() == clusterv3.Cluster_EDS && !eds[name] {
			eds[name] = true
			out.Endpoints = append(out.Endpoints, &endpointv3.ClusterLoadAssignment{ClusterName: name})
		}
	}
	return out
}
