package csds_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	adminv3 "github.com/envoyproxy/go-control-plane/envoy/admin/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	statusv3 "github.com/envoyproxy/go-control-plane/envoy/service/status/v3"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/shoalmesh/shoal/registry-istio/bootstrap"
	"github.com/shoalmesh/shoal/registry-istio/csds"
	"github.com/shoalmesh/shoal/registry-istio/xdsclient"
	"github.com/shoalmesh/shoal/registry-istio/xdsresource"
	"github.com/shoalmesh/shoal/registry-istio/xdstest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	host = "greeter.default.svc.cluster.local"
	port = 20000
)

// TestNACKShowsInCSDS: a CSDS client (go-control-plane's stub, what
// grpcdebug speaks) lists the watched cluster as ACKED; after the
// in-process xDS server sends an invalid version of it, the same client
// sees it NACKED with the rejected version and the reason.
func TestNACKShowsInCSDS(t *testing.T) {
	srv := xdstest.NewServer(t)
	v1 := srv.Set(xdstest.Service(host, port, xdstest.Endpoint{IP: "10.1.0.1", Port: port}))
	c, err := xdsclient.New(&bootstrap.Config{
		ServerURI: srv.Address(),
		Node:      bootstrap.Identity{PodName: "consumer-0", Namespace: "default", IPs: []string{"10.0.0.7"}}.Node(),
	}, xdsclient.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))), xdsclient.WithBackoff(10*time.Millisecond, 100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	clusterName := xdstest.ClusterName(host, "", port)
	got := make(chan struct{}, 16)
	defer c.WatchCluster(clusterName, xdsclient.WatcherFuncs[*xdsresource.Cluster]{
		OnChanged: func(*xdsresource.Cluster) { got <- struct{}{} },
		OnError:   func(error) { got <- struct{}{} },
	})()
	<-got

	client := csdsClient(t, csds.New(c))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	stream, err := client.StreamClientStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = stream.CloseSend() }()

	cfg := fetch(t, stream, clusterName)
	if cfg.GetClientStatus() != adminv3.ClientResourceStatus_ACKED || cfg.GetVersionInfo() != v1 || cfg.GetTypeUrl() != xdsresource.ClusterURL {
		t.Fatalf("before the bad version: %v", cfg)
	}

	bad := xdstest.Cluster(host, "", port)
	bad.LbPolicy = clusterv3.Cluster_CLUSTER_PROVIDED
	v2 := srv.Set(xdstest.Resources{Clusters: []*clusterv3.Cluster{bad}})
	for attempt := 0; ; attempt++ {
		cfg = fetch(t, stream, clusterName)
		if cfg.GetClientStatus() == adminv3.ClientResourceStatus_NACKED {
			break
		}
		if attempt == 200 {
			t.Fatalf("never NACKED: %v", cfg)
		}
		time.Sleep(20 * time.Millisecond)
	}
	es := cfg.GetErrorState()
	if !strings.Contains(es.GetDetails(), "CLUSTER_PROVIDED") || es.GetVersionInfo() != v2 {
		t.Errorf("error_state = %v, want the CLUSTER_PROVIDED reason and rejected version %s", es, v2)
	}
	if cfg.GetVersionInfo() != v1 || cfg.GetConfigStatus() != statusv3.ConfigStatus_ERROR {
		t.Errorf("NACKED resource: version %q (want the last good %s), config status %v", cfg.GetVersionInfo(), v1, cfg.GetConfigStatus())
	}

	// The unary RPC answers the same.
	resp, err := client.FetchClientStatus(ctx, &statusv3.ClientStatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if n := resp.GetConfig()[0].GetNode().GetId(); n != c.Status().NodeID || n == "" {
		t.Errorf("node id %q, want %q", n, c.Status().NodeID)
	}
}

func csdsClient(t *testing.T, s *csds.Server) statusv3.ClientStatusDiscoveryServiceClient {
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
