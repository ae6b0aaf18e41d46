package xdsclient_test

import (
	"net"
	"testing"
	"time"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/shoalmesh/shoal/registry-istio/xdsclient"
	"github.com/shoalmesh/shoal/registry-istio/xdsresource"
	"github.com/shoalmesh/shoal/registry-istio/xdstest"
)

// crossingServer is an in-process fake ADS server, scripted: it answers the
// first CDS request with cluster a, and the request that adds cluster b
// first with a push built before it (a only, as istiod sends when a config
// push crosses the request), then with a and b.
type crossingServer struct {
	discoveryv3.UnimplementedAggregatedDiscoveryServiceServer
	a, b *anypb.Any
}

func (s *crossingServer) StreamAggregatedResources(stream discoveryv3.AggregatedDiscoveryService_StreamAggregatedResourcesServer) error {
	send := func(version string, res ...*anypb.Any) error {
		return stream.Send(&discoveryv3.DiscoveryResponse{TypeUrl: xdsresource.ClusterURL, VersionInfo: version, Nonce: version, Resources: res})
	}
	for {
		req, err := stream.Recv()
		if err != nil {
			return err
		}
		if req.GetTypeUrl() != xdsresource.ClusterURL {
			continue
		}
		switch {
		case req.GetResponseNonce() == "":
			err = send("1", s.a)
		case len(req.GetResourceNames()) == 2 && req.GetResponseNonce() == "1":
			if err = send("2", s.a); err == nil {
				err = send("3", s.a, s.b)
			}
		}
		if err != nil {
			return err
		}
	}
}

// A cluster just asked for and missing from the next response is not
// reported as gone: that response may have been built before the server saw
// the request (a push crossing it). The old client reported it missing at
// once, and xdsmesh dropped it from the snapshot, failing the calls routed
// to it until the next response (seen against the real istiod right after a
// restart).
func TestJustRequestedClusterMissingFromACrossingPush(t *testing.T) {
	cluster := func(subset string) *anypb.Any {
		a, err := anypb.New(xdstest.Cluster(host, subset, port))
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer()
	discoveryv3.RegisterAggregatedDiscoveryServiceServer(g, &crossingServer{a: cluster("v1"), b: cluster("v2")})
	go func() { _ = g.Serve(lis) }()
	t.Cleanup(g.Stop)
	c, err := xdsclient.New(testConfig(lis.Addr().String()), xdsclient.WithLogger(quietLogger()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })

	first := newRecorder[*xdsresource.Cluster]()
	defer c.WatchCluster(xdstest.ClusterName(host, "v1", port), first)()
	first.next(t)
	second := newRecorder[*xdsresource.Cluster]()
	defer c.WatchCluster(xdstest.ClusterName(host, "v2", port), second)()
	if e := second.next(t); e.kind != changed || e.resource.Name != xdstest.ClusterName(host, "v2", port) {
		t.Fatalf("the new cluster's first event = %+v, want the cluster (not missing)", e)
	}
	second.none(t, 50*time.Millisecond)
}
