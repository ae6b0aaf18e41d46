package xdstest_test

import (
	"context"
	"slices"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"go.uber.org/goleak"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/shoalmesh/shoal/registry-istio/xdstest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const clusterURL = "type.googleapis.com/envoy.config.cluster.v3.Cluster"

// A raw ADS client, to check the server's own behaviour.
func stream(t *testing.T, addr string) discoveryv3.AggregatedDiscoveryService_StreamAggregatedResourcesClient {
	t.Helper()
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	s, err := discoveryv3.NewAggregatedDiscoveryServiceClient(cc).StreamAggregatedResources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func recv(t *testing.T, s discoveryv3.AggregatedDiscoveryService_StreamAggregatedResourcesClient) *discoveryv3.DiscoveryResponse {
	t.Helper()
	got := make(chan *discoveryv3.DiscoveryResponse, 1)
	errc := make(chan error, 1)
	go func() {
		r, err := s.Recv()
		if err != nil {
			errc <- err
			return
		}
		got <- r
	}()
	select {
	case r := <-got:
		return r
	case err := <-errc:
		t.Fatal(err)
	case <-time.After(10 * time.Second):
		t.Fatal("no response within 10s")
	}
	return nil
}

// The server answers by name, records requests with their node and
// NACK detail, does not resend a NACKed version (like istiod), and sends
// again after the next Set.
func TestServerAnswersRecordsAndHonoursNACK(t *testing.T) {
	srv := xdstest.NewServer(t)
	const host = "greeter.default.svc.cluster.local"
	v1 := srv.Set(xdstest.Service(host, 20000).Merge(xdstest.Service("other.default.svc.cluster.local", 80)))
	s := stream(t, srv.Address())
	name := xdstest.ClusterName(host, "", 20000)
	if err := s.Send(&discoveryv3.DiscoveryRequest{Node: &corev3.Node{Id: "n1"}, TypeUrl: clusterURL, ResourceNames: []string{name}}); err != nil {
		t.Fatal(err)
	}
	r := recv(t, s)
	if r.GetVersionInfo() != v1 || len(r.GetResources()) != 1 {
		t.Fatalf("response version %s with %d resources, want %s with 1", r.GetVersionInfo(), len(r.GetResources()), v1)
	}
	if err := s.Send(&discoveryv3.DiscoveryRequest{
		TypeUrl: clusterURL, ResourceNames: []string{name}, ResponseNonce: r.GetNonce(),
		ErrorDetail: &status.Status{Code: 3, Message: "bad cluster"},
	}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	nack, err := srv.WaitForRequest(ctx, func(r xdstest.Request) bool { return r.IsNACK() })
	if err != nil || nack.ErrorDetail != "bad cluster" || nack.ResponseNonce != r.GetNonce() {
		t.Fatalf("NACK %+v, %v", nack, err)
	}
	if first := srv.Requests()[0]; first.Node.GetId() != "n1" || first.Stream != nack.Stream || !slices.Equal(first.ResourceNames, []string{name}) {
		t.Fatalf("first request %+v", first)
	}
	// No resend of the rejected version: the next response is the next Set.
	v2 := srv.Set(xdstest.Service(host, 20000))
	if r2 := recv(t, s); r2.GetVersionInfo() != v2 {
		t.Fatalf("after the NACK got version %s, want %s", r2.GetVersionInfo(), v2)
	}
}

// Stop drops streams; Restart serves the same state on the same address.
func TestServerStopRestart(t *testing.T) {
	srv := xdstest.NewServer(t)
	addr := srv.Address()
	v := srv.Set(xdstest.Service("a.default.svc.cluster.local", 80))
	s := stream(t, addr)
	if err := s.Send(&discoveryv3.DiscoveryRequest{TypeUrl: clusterURL, ResourceNames: []string{xdstest.ClusterName("a.default.svc.cluster.local", "", 80)}}); err != nil {
		t.Fatal(err)
	}
	recv(t, s)
	srv.Stop()
	if _, err := s.Recv(); err == nil {
		t.Fatal("stream survived Stop")
	}
	srv.Stop() // idempotent
	srv.Restart()
	if srv.Address() != addr {
		t.Fatalf("address changed: %s -> %s", addr, srv.Address())
	}
	s2 := stream(t, addr)
	if err := s2.Send(&discoveryv3.DiscoveryRequest{TypeUrl: clusterURL, ResourceNames: []string{xdstest.ClusterName("a.default.svc.cluster.local", "", 80)}}); err != nil {
		t.Fatal(err)
	}
	if r := recv(t, s2); r.GetVersionInfo() != v {
		t.Fatalf("version after restart %s, want %s", r.GetVersionInfo(), v)
	}
}

func TestManyServices(t *testing.T) {
	r := xdstest.ManyServices(3, 10, 1)
	if len(r.Listeners) != 3 || len(r.Routes) != 3 || len(r.Clusters) != 3 || len(r.Endpoints) != 3 {
		t.Fatalf("counts %d %d %d %d", len(r.Listeners), len(r.Routes), len(r.Clusters), len(r.Endpoints))
	}
	seen := map[string]bool{}
	for _, cla := range r.Endpoints {
		for _, l := range cla.GetEndpoints() {
			for _, e := range l.GetLbEndpoints() {
				a := e.GetEndpoint().GetAddress().GetSocketAddress().GetAddress()
				if seen[a] {
					t.Fatalf("duplicate address %s", a)
				}
				seen[a] = true
			}
		}
	}
	if len(seen) != 30 {
		t.Fatalf("%d addresses, want 30", len(seen))
	}
}

// Like istiod, the server answers for endpoints a cluster names even when
// the test set none: with an empty ClusterLoadAssignment.
func TestServerAnswersEmptyEndpoints(t *testing.T) {
	srv := xdstest.NewServer(t)
	c := xdstest.Cluster("empty.default.svc.cluster.local", "", 80)
	srv.Set(xdstest.Resources{Clusters: []*clusterv3.Cluster{c}})
	s := stream(t, srv.Address())
	if err := s.Send(&discoveryv3.DiscoveryRequest{TypeUrl: "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment", ResourceNames: []string{c.GetName()}}); err != nil {
		t.Fatal(err)
	}
	r := recv(t, s)
	cla := &endpointv3.ClusterLoadAssignment{}
	if len(r.GetResources()) != 1 || r.GetResources()[0].UnmarshalTo(cla) != nil || cla.GetClusterName() != c.GetName() || len(cla.GetEndpoints()) != 0 {
		t.Fatalf("response %v", r)
	}
}

func TestSplit(t *testing.T) {
	r := xdstest.Split("g.default.svc.cluster.local", 80,
		xdstest.Subset{Name: "v1", Weight: 80, Endpoints: []xdstest.Endpoint{{IP: "10.0.0.1", Port: 80}}},
		xdstest.Subset{Name: "v2", Weight: 20, Endpoints: []xdstest.Endpoint{{IP: "10.0.0.2", Port: 80}}})
	wc := r.Routes[0].GetVirtualHosts()[0].GetRoutes()[0].GetRoute().GetWeightedClusters().GetClusters()
	if len(wc) != 2 || wc[0].GetName() != "outbound|80|v1|g.default.svc.cluster.local" || wc[0].GetWeight().GetValue() != 80 {
		t.Fatalf("weighted clusters %v", wc)
	}
	if len(r.Clusters) != 3 || len(r.Endpoints) != 3 || len(r.Endpoints[0].GetEndpoints()[0].GetLbEndpoints()) != 2 {
		t.Fatalf("clusters %d endpoints %d", len(r.Clusters), len(r.Endpoints))
	}
}
