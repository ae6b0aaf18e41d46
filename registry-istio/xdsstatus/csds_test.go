package xdsstatus_test

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	adminv3 "github.com/envoyproxy/go-control-plane/envoy/admin/v3"
	statusv3 "github.com/envoyproxy/go-control-plane/envoy/service/status/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/shoalmesh/shoal/registry-istio/xdsresource"
	"github.com/shoalmesh/shoal/registry-istio/xdsstatus"
)

// TestNACKShowsInCSDS: a CSDS client (go-control-plane's stub, what
// grpcdebug speaks) lists the watched cluster as ACKED; after the
// in-process xDS server sends an invalid version of it, the same client
// sees it NACKED with the rejected version and the reason.
func TestNACKShowsInCSDS(t *testing.T) {
	w := startWatching(t)
	client := csdsClient(t, xdsstatus.NewCSDS(w.client))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	stream, err := client.StreamClientStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = stream.CloseSend() }()

	cfg := fetch(t, stream, clusterName)
	if cfg.GetClientStatus() != adminv3.ClientResourceStatus_ACKED || cfg.GetVersionInfo() != w.v1 || cfg.GetTypeUrl() != xdsresource.ClusterURL {
		t.Fatalf("before the bad version: %v", cfg)
	}

	v2 := w.sendBadCluster()
	eventually(t, "NACKED in CSDS", func() bool {
		cfg = fetch(t, stream, clusterName)
		return cfg.GetClientStatus() == adminv3.ClientResourceStatus_NACKED
	})
	es := cfg.GetErrorState()
	if !strings.Contains(es.GetDetails(), "CLUSTER_PROVIDED") || es.GetVersionInfo() != v2 {
		t.Errorf("error_state = %v, want the CLUSTER_PROVIDED reason and rejected version %s", es, v2)
	}
	if cfg.GetVersionInfo() != w.v1 || cfg.GetConfigStatus() != statusv3.ConfigStatus_ERROR {
		t.Errorf("NACKED resource: version %q (want the last good %s), config status %v", cfg.GetVersionInfo(), w.v1, cfg.GetConfigStatus())
	}

	// The unary RPC answers the same.
	resp, err := client.FetchClientStatus(ctx, &statusv3.ClientStatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if n := resp.GetConfig()[0].GetNode().GetId(); n != w.client.Status().NodeID || n == "" {
		t.Errorf("node id %q, want %q", n, w.client.Status().NodeID)
	}
}

func csdsClient(t *testing.T, s *xdsstatus.CSDS) statusv3.ClientStatusDiscoveryServiceClient {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	s.Register(gs)
	done := make(chan struct{})
	go func() { defer close(done); _ = gs.Serve(lis) }()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close(); gs.Stop(); <-done })
	return statusv3.NewClientStatusDiscoveryServiceClient(conn)
}

func fetch(t *testing.T, stream statusv3.ClientStatusDiscoveryService_StreamClientStatusClient, name string) *statusv3.ClientConfig_GenericXdsConfig {
	t.Helper()
	if err := stream.Send(&statusv3.ClientStatusRequest{}); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	for _, cc := range resp.GetConfig() {
		for _, g := range cc.GetGenericXdsConfigs() {
			if g.GetName() == name {
				return g
			}
		}
	}
	t.Fatalf("CSDS lists no %s: %v", name, resp)
	return nil
}
