package securitye2e_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/shoalmesh/shoal/localmesh"
	"github.com/shoalmesh/shoal/registry-istio/bootstrap"
	"github.com/shoalmesh/shoal/registry-istio/xdsclient"
	"github.com/shoalmesh/shoal/registry-istio/xdsresource"
)

const (
	xdsService = "secure-greeter"
	xdsCluster = "outbound|20000||" + xdsService + ".default.svc.cluster.local"
)

// xdsConfig is the bootstrap of a workload of ServiceAccount w.sa talking
// to istiod's TLS port with its projected token.
func xdsConfig(m *localmesh.Mesh, w workload) *bootstrap.Config {
	return &bootstrap.Config{
		ServerURI: m.IstiodTLSAddr(0),
		TLS:       &bootstrap.TLS{RootCertFile: w.rootFile, ServerName: localmesh.IstiodServerName, TokenFile: w.tokenFile},
		Node: bootstrap.Identity{
			PodName: w.sa + "-0", Namespace: ns, IPs: []string{"127.0.0.1"}, ServiceAccount: w.sa,
		}.Node(),
	}
}

// testXDSOverTLS: registry-istio's xDS client on istiod's TLS port, with
// the root from the ConfigMap and the ServiceAccount's istio-ca token,
// receives a cluster; with a token of the wrong audience istiod refuses
// the stream and the client's status says it was an authentication failure.
func testXDSOverTLS(ctx context.Context, t *testing.T, m *localmesh.Mesh) {
	if err := m.Apply(ctx, `
apiVersion: v1
kind: Service
metadata: {name: `+xdsService+`, namespace: default}
spec:
  ports: [{name: grpc, port: 20000, protocol: TCP}]
`); err != nil {
		t.Fatal(err)
	}
	w := newWorkload(ctx, t, m, "xds-client")
	c, err := xdsclient.New(xdsConfig(m, w), xdsclient.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	got := make(chan *xdsresource.Cluster, 1)
	cancel := c.WatchCluster(xdsCluster, xdsclient.WatcherFuncs[*xdsresource.Cluster]{OnChanged: func(cl *xdsresource.Cluster) {
		select {
		case got <- cl:
		default:
		}
	}})
	defer cancel()
	select {
	case cl := <-got:
		if cl == nil {
			t.Fatal("nil cluster")
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("no cluster %s over TLS within 30s; client status: %+v", xdsCluster, c.Status())
	}

	bad := newWorkload(ctx, t, m, "xds-wrong-audience")
	if err := m.WriteServiceAccountToken(ctx, ns, bad.sa, "https://kubernetes.default.svc.cluster.local", time.Hour, bad.tokenFile); err != nil {
		t.Fatal(err)
	}
	bc, err := xdsclient.New(xdsConfig(m, bad), xdsclient.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = bc.Close() }()
	bc.Connect()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) && bc.Status().LastConnError == "" {
		time.Sleep(50 * time.Millisecond)
	}
	if e := bc.Status().LastConnError; !strings.Contains(e, "authentication failure") {
		t.Fatalf("xDS with a wrong-audience token: last connection error %q, want an authentication failure", e)
	}
}
