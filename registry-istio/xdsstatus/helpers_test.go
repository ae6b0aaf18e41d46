package xdsstatus_test

import (
	"io"
	"log/slog"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	"go.uber.org/goleak"

	"github.com/shoalmesh/shoal/registry-istio/bootstrap"
	"github.com/shoalmesh/shoal/registry-istio/xdsclient"
	"github.com/shoalmesh/shoal/registry-istio/xdsresource"
	"github.com/shoalmesh/shoal/registry-istio/xdstest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	host = "greeter.default.svc.cluster.local"
	port = 20000
)

var clusterName = xdstest.ClusterName(host, "", port)

// watching is an xDS client against an in-process xdstest server,
// watching one cluster that the server has served as version v1.
type watching struct {
	srv    *xdstest.Server
	client *xdsclient.Client
	v1     string
}

func startWatching(t *testing.T) *watching {
	t.Helper()
	srv := xdstest.NewServer(t)
	v1 := srv.Set(xdstest.Service(host, port, xdstest.Endpoint{IP: "10.1.0.1", Port: port}))
	c, err := xdsclient.New(&bootstrap.Config{
		ServerURI: srv.Address(),
		Node:      bootstrap.Identity{PodName: "consumer-0", Namespace: "default", IPs: []string{"10.0.0.7"}}.Node(),
	}, xdsclient.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))), xdsclient.WithBackoff(10*time.Millisecond, 100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	got := make(chan struct{}, 16)
	t.Cleanup(c.WatchCluster(clusterName, xdsclient.WatcherFuncs[*xdsresource.Cluster]{
		OnChanged: func(*xdsresource.Cluster) { got <- struct{}{} },
		OnError:   func(error) { got <- struct{}{} },
	}))
	<-got
	return &watching{srv: srv, client: c, v1: v1}
}

// sendBadCluster serves a version of the cluster the client must NACK
// (an lb_policy it does not support) and returns that version.
func (w *watching) sendBadCluster() string {
	bad := xdstest.Cluster(host, "", port)
	bad.LbPolicy = clusterv3.Cluster_CLUSTER_PROVIDED
	return w.srv.Set(xdstest.Resources{Clusters: []*clusterv3.Cluster{bad}})
}

// eventually retries check every 20 ms, 200 times at most.
func eventually(t *testing.T, what string, check func() bool) {
	t.Helper()
	for attempt := 0; !check(); attempt++ {
		if attempt == 200 {
			t.Fatalf("never %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
