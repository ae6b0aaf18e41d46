package registrye2e_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shoalmesh/shoal/localmesh"
	"github.com/shoalmesh/shoal/registry-istio/bootstrap"
	"github.com/shoalmesh/shoal/registry-istio/xdsclient"
	"github.com/shoalmesh/shoal/registry-istio/xdsresource"
)

const (
	synczService = "syncz-greeter"
	synczHost    = synczService + ".default.svc.cluster.local"
	synczCluster = "outbound|20000||" + synczHost
	// synczSA is the caller of the syncz query: istiod answers debug
	// requests from istio-system's ServiceAccounts, as istioctl's.
	synczSA = "shoal-status"
)

// TestSyncz: a Shoal xDS client that watches a listener, its routes, a
// cluster and its endpoints on the real istiod is listed by istiod's syncz
// (istio.io/debug/syncz over xDS, what istioctl proxy-status reads) with
// all four types SYNCED, that is with the last nonce istiod sent acked; a
// node without PROXY_CONFIG (what registry-istio sent before) is not
// listed at all. `shoal status`, built from the cli module, reports the
// client as synced.
func TestSyncz(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real control plane; run without -short (make test)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	m, err := localmesh.Start(ctx, localmesh.WithoutControllerManager(), localmesh.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Stop)
	if err := m.Apply(ctx, `
apiVersion: v1
kind: Service
metadata: {name: `+synczService+`, namespace: default}
spec:
  ports: [{name: grpc, port: 20000, protocol: TCP}]
`); err != nil {
		t.Fatal(err)
	}

	shoal := watchAllTypes(ctx, t, bootstrap.Identity{PodName: "syncz-shoal", Namespace: ns, IPs: []string{"127.0.0.1"}}.Node(), m)
	old := bootstrap.Identity{PodName: "syncz-old", Namespace: ns, IPs: []string{"127.0.0.2"}}.Node()
	delete(old.Metadata, "PROXY_CONFIG")
	oldID := watchAllTypes(ctx, t, old, m)

	query := synczQuery(ctx, t, m)
	want := []string{xdsresource.ClusterURL, xdsresource.EndpointsURL, xdsresource.ListenerURL, xdsresource.RouteConfigURL}
	var last []xdsclient.ProxySync
	for attempt := 0; ; attempt++ {
		qctx, qcancel := context.WithTimeout(ctx, 20*time.Second)
		last, err = xdsclient.Syncz(qctx, query)
		qcancel()
		if err != nil {
			t.Fatal(err)
		}
		if got, ok := find(last, shoal); ok && allSynced(got, want) {
			for _, p := range last {
				if p.ID == oldID {
					t.Fatalf("syncz lists %s, a node without PROXY_CONFIG; want it skipped as istiod's statusgen does", oldID)
				}
			}
			if got.ClusterID != "Kubernetes" || got.Namespace != ns {
				t.Fatalf("syncz node %s: cluster %q namespace %q, want Kubernetes/%s", got.ID, got.ClusterID, got.Namespace, ns)
			}
			t.Logf("istiod's syncz: %+v", got)
			shoalStatus(ctx, t, query, shoal)
			return
		}
		if attempt == 60 || ctx.Err() != nil {
			t.Fatalf("istiod's syncz never listed %s with %v all SYNCED; last answer: %+v", shoal, want, last)
		}
		select {
		case <-ctx.Done():
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// watchAllTypes connects a Shoal xDS client as node to istiod's plaintext
// port and watches one resource of each type, waiting for the listener to
// learn its route configuration's name. It returns the proxy ID istiod
// gives it (the node ID's "<pod>.<namespace>" field).
func watchAllTypes(ctx context.Context, t *testing.T, node bootstrap.Node, m *localmesh.Mesh) string {
	t.Helper()
	c, err := xdsclient.New(&bootstrap.Config{ServerURI: m.IstiodAddr(0), Node: node}, xdsclient.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	lis := make(chan *xdsresource.Listener, 1)
	t.Cleanup(c.WatchListener(synczHost+":20000", xdsclient.WatcherFuncs[*xdsresource.Listener]{OnChanged: func(l *xdsresource.Listener) {
		select {
		case lis <- l:
		default:
		}
	}}))
	t.Cleanup(c.WatchCluster(synczCluster, xdsclient.WatcherFuncs[*xdsresource.Cluster]{}))
	t.Cleanup(c.WatchEndpoints(synczCluster, xdsclient.WatcherFuncs[*xdsresource.Endpoints]{}))
	select {
	case l := <-lis:
		if l.RouteConfigName == "" {
			t.Fatalf("listener %s has inline routes; the test needs an RDS name", l.Name)
		}
		t.Cleanup(c.WatchRouteConfig(l.RouteConfigName, xdsclient.WatcherFuncs[*xdsresource.RouteConfig]{}))
	case <-ctx.Done():
		t.Fatalf("no listener for %s: %v; client status: %+v", synczHost, ctx.Err(), c.Status())
	}
	return strings.Split(node.ID, "~")[2]
}

// synczQuery is the bootstrap of a caller in istio-system on istiod's TLS
// port with its ServiceAccount's istio-ca token, as istioctl connects.
func synczQuery(ctx context.Context, t *testing.T, m *localmesh.Mesh) *bootstrap.Config {
	t.Helper()
	const sysNS = "istio-system"
	if err := m.CreateServiceAccount(ctx, sysNS, synczSA); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	token, root := filepath.Join(dir, "token"), filepath.Join(dir, "root-cert.pem")
	if err := m.WriteServiceAccountToken(ctx, sysNS, synczSA, localmesh.IstioCAAudience, time.Hour, token); err != nil {
		t.Fatal(err)
	}
	pem, err := m.RootCert(ctx, ns)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(root, pem, 0o600); err != nil {
		t.Fatal(err)
	}
	return &bootstrap.Config{
		ServerURI: m.IstiodTLSAddr(0),
		TLS:       &bootstrap.TLS{RootCertFile: root, ServerName: localmesh.IstiodServerName, TokenFile: token},
		Node: bootstrap.Identity{
			PodName: synczSA, Namespace: sysNS, IPs: []string{"127.0.0.1"}, ServiceAccount: synczSA,
		}.Node(),
	}
}

func find(ps []xdsclient.ProxySync, id string) (xdsclient.ProxySync, bool) {
	for _, p := range ps {
		if p.ID == id {
			return p, true
		}
	}
	return xdsclient.ProxySync{}, false
}

// allSynced reports whether p's types include every one of want, each SYNCED.
func allSynced(p xdsclient.ProxySync, want []string) bool {
	state := map[string]string{}
	for _, ts := range p.Types {
		state[ts.TypeURL] = ts.State
	}
	for _, u := range want {
		if state[u] != "SYNCED" {
			return false
		}
	}
	return true
}

// shoalStatus runs `shoal status -o json`, built from the cli module, with
// query's TLS settings, and checks that it reports client as synced.
func shoalStatus(ctx context.Context, t *testing.T, query *bootstrap.Config, client string) {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "shoal")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/shoal")
	build.Dir = filepath.Join("..", "..", "cli")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build the shoal cli: %v\n%s", err, out)
	}
	cmd := exec.CommandContext(ctx, bin, "status", "-o", "json", "--xds", query.ServerURI)
	cmd.Env = append(os.Environ(),
		"SHOAL_XDS_TLS=true", "SHOAL_XDS_ROOT_CERT="+query.TLS.RootCertFile, "SHOAL_XDS_TOKEN="+query.TLS.TokenFile,
		"SHOAL_XDS_SERVER_NAME="+query.TLS.ServerName, "SERVICE_ACCOUNT="+synczSA,
		"POD_NAME=", "POD_NAMESPACE=", "INSTANCE_IP=")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("shoal status: %v\n%s%s", err, out, stderr.String())
	}
	var rows []struct {
		ID     string `json:"id"`
		Synced bool   `json:"synced"`
	}
	if err := json.Unmarshal(out, &rows); err != nil {
		t.Fatalf("shoal status -o json: %v\n%s", err, out)
	}
	for _, r := range rows {
		if r.ID == client && r.Synced {
			return
		}
	}
	t.Fatalf("shoal status does not report %s as synced:\n%s", client, out)
}
