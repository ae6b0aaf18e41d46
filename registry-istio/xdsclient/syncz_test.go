package xdsclient_test

import (
	"context"
	"net"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	statusv3 "github.com/envoyproxy/go-control-plane/envoy/service/status/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	grpcstatus "google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/shoalmesh/shoal/registry-istio/xdsclient"
)

// fakeSyncz is an in-process stand-in for istiod's status generator (unit
// tests only; interop/registrye2e TestSyncz reads the real one): it records
// the request and answers with configs, or fails with err.
type fakeSyncz struct {
	discoveryv3.UnimplementedAggregatedDiscoveryServiceServer
	configs []*statusv3.ClientConfig
	err     error
	got     chan *discoveryv3.DiscoveryRequest
}

func (f *fakeSyncz) StreamAggregatedResources(s discoveryv3.AggregatedDiscoveryService_StreamAggregatedResourcesServer) error {
	req, err := s.Recv()
	if err != nil {
		return err
	}
	f.got <- req
	if f.err != nil {
		return f.err
	}
	resp := &discoveryv3.DiscoveryResponse{TypeUrl: req.GetTypeUrl(), Nonce: "1"}
	for _, c := range f.configs {
		a, err := anypb.New(c)
		if err != nil {
			return err
		}
		resp.Resources = append(resp.Resources, a)
	}
	if err := s.Send(resp); err != nil {
		return err
	}
	<-s.Context().Done()
	return nil
}

func serveSyncz(t *testing.T, f *fakeSyncz) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	discoveryv3.RegisterAggregatedDiscoveryServiceServer(srv, f)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return lis.Addr().String()
}

func TestSyncz(t *testing.T) {
	const cds, lds = "type.googleapis.com/envoy.config.cluster.v3.Cluster", "type.googleapis.com/envoy.config.listener.v3.Listener"
	md, err := structpb.NewStruct(map[string]any{"CLUSTER_ID": "Kubernetes", "NAMESPACE": "default"})
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeSyncz{got: make(chan *discoveryv3.DiscoveryRequest, 1), configs: []*statusv3.ClientConfig{
		{Node: &corev3.Node{Id: "b.default", Metadata: md}, GenericXdsConfigs: []*statusv3.ClientConfig_GenericXdsConfig{
			{TypeUrl: cds, ConfigStatus: statusv3.ConfigStatus_SYNCED},
			{TypeUrl: lds, ConfigStatus: statusv3.ConfigStatus_STALE},
		}},
		{Node: &corev3.Node{Id: "a.default", Metadata: md}, GenericXdsConfigs: []*statusv3.ClientConfig_GenericXdsConfig{
			{TypeUrl: cds, ConfigStatus: statusv3.ConfigStatus_SYNCED},
			{TypeUrl: lds, ConfigStatus: statusv3.ConfigStatus_SYNCED},
		}},
	}}
	ps, err := xdsclient.Syncz(context.Background(), testConfig(serveSyncz(t, f)))
	if err != nil {
		t.Fatal(err)
	}
	req := <-f.got
	if req.GetTypeUrl() != xdsclient.SynczURL {
		t.Errorf("type URL %q, want %q", req.GetTypeUrl(), xdsclient.SynczURL)
	}
	// istiod would answer a GENERATOR=grpc node from the grpc generator
	// (nothing) and list a PROXY_CONFIG node as a client.
	for _, k := range []string{"GENERATOR", "PROXY_CONFIG"} {
		if _, ok := req.GetNode().GetMetadata().GetFields()[k]; ok {
			t.Errorf("the query's node carries %s", k)
		}
	}
	if len(ps) != 2 || ps[0].ID != "a.default" || ps[1].ID != "b.default" {
		t.Fatalf("clients %+v, want a.default then b.default", ps)
	}
	if !ps[0].Synced() || ps[1].Synced() {
		t.Errorf("Synced: a %v, b %v; want true, false", ps[0].Synced(), ps[1].Synced())
	}
	if ps[0].ClusterID != "Kubernetes" || ps[0].Namespace != "default" || ps[1].Types[1].State != "STALE" {
		t.Errorf("clients %+v", ps)
	}
	if (xdsclient.ProxySync{}).Synced() {
		t.Error("a client that watches nothing is Synced")
	}
}

// A refusal (istiod's ENABLE_DEBUG_ENDPOINT_AUTH on a plaintext stream)
// keeps its gRPC code and says what to use.
func TestSynczUnauthenticated(t *testing.T) {
	f := &fakeSyncz{got: make(chan *discoveryv3.DiscoveryRequest, 1), err: grpcstatus.Error(codes.Unauthenticated, "authentication required")}
	_, err := xdsclient.Syncz(context.Background(), testConfig(serveSyncz(t, f)))
	if grpcstatus.Code(err) != codes.Unauthenticated || !strings.Contains(err.Error(), "TLS port (15012)") {
		t.Fatalf("err = %v, want Unauthenticated naming the TLS port", err)
	}
}
